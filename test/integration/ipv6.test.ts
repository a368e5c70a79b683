// IPv6 parity: loss, partition, latency, timeout and reset on a Docker network
// with IPv6 enabled, peers named by IPv6 address and CIDR. Each fault is
// measured on the target, beside a control container on the same network and
// the same target's IPv4 traffic (a rule for an IPv6 peer must leave IPv4 alone).
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { ourChainsOf } from '../helpers/datapath.js';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { IMAGES, sh, stopAll, testLabels } from '../helpers/containers.js';
import { median } from '../helpers/stats.js';
import { redirectChainsIn, sandboxOf } from '../../src/targets/queue-rules.js';

const docker = new Docker();

// HTTP on 8080, a UDP echo on 9000 and a TCP echo on 9001, all dual-stack.
const IPV6_SERVER = `
const u = require('dgram').createSocket({ type: 'udp6' });
u.on('message', (m, r) => u.send(m, r.port, r.address));
u.bind(9000, '::');
require('net').createServer((c) => c.on('error', () => c.destroy()).pipe(c)).listen(9001, '::');
require('http').createServer((q, s) => s.end('ok')).listen(8080, '::', () => console.log('listening http=8080'));`;

/** Sends \`count\` datagrams from the host to host:port (paced) and returns the share not echoed. */
async function udpLoss(host: string, count: number, waitMs = 500): Promise<number> {
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const seen = new Set<number>();
  sock.on('message', (msg) => seen.add(Number(msg.toString().split(':')[1])));
  sock.bind(0);
  await once(sock, 'listening');
  for (let i = 0; i < count; i++) {
    sock.send(`x:${i}`, 9000, host);
    if (i % 5 === 4) await sleep(1);
  }
  await sleep(waitMs);
  sock.close();
  return 1 - seen.size / count;
}

interface OnNet {
  c: StartedTestContainer;
  ipv4: string;
  ipv6: string;
  /** The network's IPv6 gateway: the host's address on the bridge. */
  gateway6: string;
}

async function addresses(c: StartedTestContainer, network: string): Promise<OnNet> {
  const info = await docker.getContainer(c.getId()).inspect();
  const n = info.NetworkSettings.Networks[network];
  if (!n?.GlobalIPv6Address) throw new Error(`container ${c.getName()} has no IPv6 address on ${network}`);
  return { c, ipv4: n.IPAddress, ipv6: n.GlobalIPv6Address, gateway6: n.IPv6Gateway };
}

/** Times of `n` sequential GETs, each on a new connection (curl's clock); failed ones as 'fail'. */
async function curlMs(from: StartedTestContainer, url: string, n: number, maxTime = 3): Promise<(number | 'fail')[]> {
  const { output } = await sh(
    from,
    `for i in $(seq ${n}); do curl -g -s -o /dev/null --max-time ${maxTime} -w '%{http_code} %{time_total}\\n' '${url}' || true; done`,
  );
  return output
    .trim()
    .split('\n')
    .map((l) => {
      const [code, t] = l.trim().split(' ');
      return code === '200' ? Number(t) * 1000 : 'fail';
    });
}

const ok = (xs: (number | 'fail')[]) => xs.filter((x): x is number => x !== 'fail');

describe('IPv6', () => {
  let networkName: string;
  let subnet: string;
  let target: OnNet;
  let control: OnNet;
  let client: OnNet;

  beforeAll(async () => {
    // A subnet of our own per run: fd00:<random 32 bits>::/64 (ULA, never routed).
    const r = randomBytes(4).toString('hex');
    subnet = `fd00:${r.slice(0, 4)}:${r.slice(4)}::/64`;
    networkName = `vc-ipv6-${r}`;
    await docker.createNetwork({
      Name: networkName,
      EnableIPv6: true,
      IPAM: { Config: [{ Subnet: subnet }] },
      Labels: testLabels('ipv6-network'),
    });
    const server = (name: string) =>
      new GenericContainer(IMAGES.httpServer)
        .withNetworkMode(networkName)
        // The fixture's server binds its UDP echo as udp4: a plain dual-stack HTTP server instead.
        .withCommand(['node', '-e', IPV6_SERVER])
        .withLabels(testLabels(name))
        .withWaitStrategy(Wait.forLogMessage(/listening http=/));
    const [t, c, cl] = await Promise.all([
      server('ipv6-target').start(),
      server('ipv6-control').start(),
      new GenericContainer(IMAGES.client).withNetworkMode(networkName).withLabels(testLabels('ipv6-client')).start(),
    ]);
    [target, control, client] = await Promise.all([addresses(t, networkName), addresses(c, networkName), addresses(cl, networkName)]);
    // The bridge's IPv6 address is tentative (duplicate address detection) for
    // about a second after the first container joins: wait until the host is heard.
    for (let i = 0; i < 40 && (await udpLoss(target.ipv6, 5, 100)) > 0; i++) await sleep(250);
  });

  afterAll(async () => {
    await stopAll(target?.c, control?.c, client?.c);
    // The engine may still be detaching the stopped containers' endpoints.
    for (let i = 0; i < 20; i++) {
      const gone = await docker
        .getNetwork(networkName)
        .remove()
        .then(() => true)
        .catch((err: { statusCode?: number }) => err.statusCode === 404);
      if (gone) break;
      await sleep(250);
    }
  });

  it("network-loss drops what the target sends to an IPv6 peer, and neither the control's nor the same peer's IPv4 packets", async () => {
    // The host talks to the containers from the bridge's address: the gateway.
    expect(await udpLoss(target.ipv6, 200)).toBe(0);
    const fault = await chaos.inject({
      kind: 'network-loss',
      target: target.c,
      peer: target.gateway6,
      direction: 'egress',
      percent: 50,
      seed: 7,
    });
    const lossTarget6 = await udpLoss(target.ipv6, 400);
    const lossTarget4 = await udpLoss(target.ipv4, 200);
    const lossControl6 = await udpLoss(control.ipv6, 200);
    const s = fault.stats();
    await fault.revert();
    const after = await udpLoss(target.ipv6, 200);
    console.info(
      `ipv6 loss: target over IPv6 ${(lossTarget6 * 100).toFixed(1)}%, over IPv4 ${(lossTarget4 * 100).toFixed(1)}%, control ${(lossControl6 * 100).toFixed(1)}%, after ${(after * 100).toFixed(1)}%; kernel dropped ${s.egressDropped} of ${s.egressSeen}`,
    );
    // 400 draws at 50%: 35-65% holds with overwhelming probability.
    expect(lossTarget6).toBeGreaterThan(0.35);
    expect(lossTarget6).toBeLessThan(0.65);
    expect(lossTarget4).toBe(0);
    expect(lossControl6).toBe(0);
    // Every echo is a packet the target sent its IPv6 peer; the kernel's count is what was lost.
    expect(s.egressSeen).toBe(400);
    expect(s.egressDropped).toBe(Math.round(lossTarget6 * 400));
    expect(after).toBe(0);
  });

  it('network-partition cuts the target off from an IPv6 CIDR, not from the control or over IPv4', async () => {
    const url6 = `http://[${target.ipv6}]:8080/`;
    expect(ok(await curlMs(client.c, url6, 2))).toHaveLength(2);
    const fault = await chaos.inject({ kind: 'network-partition', target: target.c, peer: subnet });
    const cut = await curlMs(client.c, url6, 2, 1);
    const over4 = await curlMs(client.c, `http://${target.ipv4}:8080/`, 2);
    const controlOk = await curlMs(client.c, `http://[${control.ipv6}]:8080/`, 2);
    const s = fault.stats();
    await fault.revert();
    expect(cut).toEqual(['fail', 'fail']);
    expect(ok(over4)).toHaveLength(2);
    expect(ok(controlOk)).toHaveLength(2);
    expect(s.ingressDropped).toBeGreaterThan(0); // the client's SYNs
    expect(ok(await curlMs(client.c, url6, 2))).toHaveLength(2);
  });

  const chainsOf = (c: StartedTestContainer) => ourChainsOf(c);

  it('network-latency 150 ms on the IPv6 connections the target accepts (and its IPv4 ones: no peer), once per round trip; the control is untouched', async () => {
    const url6 = `http://[${target.ipv6}]:8080/`;
    const base = median((await reusedTimes(client.c, url6, 11)).slice(1));
    const fault = await chaos.inject({ kind: 'network-latency', target: target.c, latencyMs: 150 });
    const during6 = await reusedTimes(client.c, url6, 11);
    const during4 = await reusedTimes(client.c, `http://${target.ipv4}:8080/`, 6);
    const ctl = median((await reusedTimes(client.c, `http://[${control.ipv6}]:8080/`, 11)).slice(1));
    const chains = await chainsOf(target.c);
    const s = fault.stats();
    await fault.revert();
    const after = median((await reusedTimes(client.c, url6, 11)).slice(1));
    const reused6 = median(during6.slice(1));
    console.info(
      `ipv6 latency 150 (inbound, no peer): reused ${base.toFixed(1)} -> ${reused6.toFixed(1)} ms (first ${during6[0]?.toFixed(1)}), ` +
        `IPv4 ${median(during4.slice(1)).toFixed(1)}, control ${ctl.toFixed(1)}, after ${after.toFixed(1)}; chains ${chains}; ${JSON.stringify(s)}`,
    );
    // Every request on the open IPv6 connection waits for the held answer, once (not twice).
    expect(Math.min(...during6.slice(1))).toBeGreaterThanOrEqual(148);
    expect(reused6 - base).toBeLessThan(220);
    // The first also waits for the held SYN-ACK.
    expect(during6[0]).toBeGreaterThanOrEqual(298);
    // No peer: the target's IPv4 connections get it too.
    expect(Math.min(...during4.slice(1))).toBeGreaterThanOrEqual(148);
    expect(ctl).toBeLessThan(base + 50);
    expect(after).toBeLessThan(base + 50);
    // The kept rules in both families' tables while in force, none after.
    expect(chains).toEqual(['VC-S-I', 'VC-S-O', 'ip6:VC-S-I', 'ip6:VC-S-O']);
    // The IPv6 connection and the IPv4 one (a late packet of the baseline's connection may count as one more).
    expect(s.connectionsMatched).toBeGreaterThanOrEqual(2);
    expect(s.connectionsMatched).toBeLessThanOrEqual(3);
    expect(s.packetsDelayed).toBeGreaterThanOrEqual(20);
    expect(await chainsOf(target.c)).toEqual([]);
  });

  it('network-latency 150 ms to an IPv6 CIDR peer: the connections the target opens to it, on one open before the inject too; not its IPv4 ones', async () => {
    // The client is the target: what it sends to the subnet is held.
    const url6 = `http://[${target.ipv6}]:8080/`;
    const url4 = `http://${target.ipv4}:8080/`;
    await openEcho(client.c, 'l', target.ipv6);
    const base = median((await reusedTimes(client.c, url6, 11)).slice(1));
    const base4 = median((await reusedTimes(client.c, url4, 11)).slice(1));
    const openBase = await echoMs(client.c, '/tmp/lin', '/tmp/lout', 'b0');
    const fault = await chaos.inject({ kind: 'network-latency', target: client.c, peer: subnet, latencyMs: 150 });
    const during6 = await reusedTimes(client.c, url6, 11);
    const during4 = median((await reusedTimes(client.c, url4, 11)).slice(1));
    const openDuring = await echoMs(client.c, '/tmp/lin', '/tmp/lout', 'd0');
    const s = fault.stats();
    await fault.revert();
    const after = median((await reusedTimes(client.c, url6, 11)).slice(1));
    const openAfter = await echoMs(client.c, '/tmp/lin', '/tmp/lout', 'a0');
    await closeEchoes(client.c);
    const reused6 = median(during6.slice(1));
    console.info(
      `ipv6 latency 150 (outbound, peer ${subnet}): reused ${base.toFixed(1)} -> ${reused6.toFixed(1)} ms (first ${during6[0]?.toFixed(1)}), ` +
        `IPv4 ${base4.toFixed(1)} -> ${during4.toFixed(1)}, open connection ${openBase.toFixed(1)} -> ${openDuring.toFixed(1)} -> ${openAfter.toFixed(1)}, ` +
        `after ${after.toFixed(1)}; ${JSON.stringify(s)}`,
    );
    expect(Math.min(...during6.slice(1))).toBeGreaterThanOrEqual(148);
    expect(reused6 - base).toBeLessThan(220);
    expect(during6[0]).toBeGreaterThanOrEqual(298); // the SYN is held too
    expect(openDuring).toBeGreaterThanOrEqual(148); // the connection open at inject
    expect(during4).toBeLessThan(base4 + 50); // the IPv6 CIDR leaves IPv4 alone
    expect(after).toBeLessThan(base + 50);
    expect(openAfter).toBeLessThan(openBase + 100);
    expect(s.connectionsOpenAtInject).toBe(1);
    // The open echo connection and the curl one (a late packet of a baseline connection may count as one more).
    expect(s.connectionsMatched).toBeGreaterThanOrEqual(2);
    expect(s.connectionsMatched).toBeLessThanOrEqual(3);
    expect(await chainsOf(client.c)).toEqual([]);
  });

  it('network-timeout stalls an IPv6 connection open before the inject (peer by IPv6 address); revert delivers what was held', async () => {
    await openEcho(client.c, 't', target.ipv6);
    try {
      expect(await echoed(client.c, '/tmp/tin', '/tmp/tout', 'before', 2000)).toBe(true);
      const fault = await chaos.inject({ kind: 'network-timeout', target: client.c, peer: target.ipv6 });
      const during = await echoed(client.c, '/tmp/tin', '/tmp/tout', 'during', 1000);
      const s = fault.stats();
      await fault.revert();
      const held = await echoed(client.c, '/tmp/tin', '/tmp/tout', 'during', 2000);
      const after = await echoed(client.c, '/tmp/tin', '/tmp/tout', 'after', 2000);
      console.info(
        `ipv6 timeout on an open connection: during ${during}, held then delivered ${held}, after ${after}; ${JSON.stringify(s)}`,
      );
      expect(during).toBe(false);
      expect(held).toBe(true);
      expect(after).toBe(true);
      expect(s.connectionsOpenAtInject).toBe(1);
      expect(s.connectionsHit).toBe(1);
      expect(await chainsOf(client.c)).toEqual([]);
    } finally {
      await closeEchoes(client.c);
    }
  });

  it('network-reset resets an IPv6 connection the target accepted before the inject (its IPv6 socket destroyed), not the IPv4 one', async () => {
    await openEcho(client.c, 'r6', target.ipv6);
    await openEcho(client.c, 'r4', target.ipv4);
    try {
      expect(await echoed(client.c, '/tmp/r6in', '/tmp/r6out', 'before', 2000)).toBe(true);
      expect(await echoed(client.c, '/tmp/r4in', '/tmp/r4out', 'before', 2000)).toBe(true);
      const fault = await chaos.inject({ kind: 'network-reset', target: target.c, peer: subnet, afterBytes: 0 });
      await sh(client.c, 'echo during >> /tmp/r6in; echo during >> /tmp/r4in; sleep 0.5');
      const s = fault.stats();
      await fault.revert();
      const ended = await sh(client.c, 'cat /tmp/r6end /tmp/r4end 2>/dev/null; true');
      const v4 = await echoed(client.c, '/tmp/r4in', '/tmp/r4out', 'after', 2000);
      console.info(
        `ipv6 reset on an open inbound connection: ended ${JSON.stringify(ended.output.trim())}, IPv4 one still echoes ${v4}; ${JSON.stringify(s)}`,
      );
      // The IPv6 connection was closed by the reset, the IPv4 one still works.
      expect(ended.output.trim()).toBe('closed');
      expect(v4).toBe(true);
      expect(s.connectionsOpenAtInject).toBe(1);
      expect(s.connectionsHit).toBe(1);
      expect(s.queueErrors).toBe(0);
      expect(await chainsOf(target.c)).toEqual([]);
    } finally {
      await closeEchoes(client.c);
    }
  });
  it('http on the connections the target accepts from an IPv6 CIDR: aborted over IPv6, not over IPv4 nor at the control', async () => {
    const info = await docker.getContainer(target.c.getId()).inspect();
    const netns = (await sandboxOf(docker, target.c.getId(), info.State.Pid)) as string;
    const status = async (url: string) =>
      (await sh(client.c, `curl -g -s --max-time 5 -o /dev/null -w '%{http_code}' '${url}'`)).output.trim();
    const url6 = `http://[${target.ipv6}]:8080/x`;
    expect(await status(url6)).toBe('200');
    const fault = await chaos.inject({
      kind: 'http',
      target: target.c,
      connections: 'inbound',
      peer: subnet,
      abort: { status: 503, body: 'injected' },
    });
    const during6 = await status(url6);
    const during4 = await status(`http://${target.ipv4}:8080/x`);
    const ctl = await status(`http://[${control.ipv6}]:8080/x`);
    const chains = await redirectChainsIn(netns);
    const s = fault.stats();
    await fault.revert();
    const after = await status(url6);
    console.info(
      `ipv6 http inbound: IPv6 ${during6}, IPv4 ${during4}, control ${ctl}, after ${after}; chains ${chains}; ${JSON.stringify(s)}`,
    );
    expect(during6).toBe('503');
    expect(during4).toBe('200');
    expect(ctl).toBe('200');
    expect(after).toBe('200');
    // The kept REDIRECT rules are in both families' tables; the slot's program takes only the IPv6 peer's connections.
    expect(chains.sort()).toEqual(['VC-S-P', 'ip6:VC-S-P']);
    expect(s.inboundConnections).toBe(1);
    expect(s.httpRequestsAborted).toBe(1);
    expect(await ourChainsOf(target.c, 'queue+nat')).toEqual([]);
  });
});

/**
 * curl in the client container: one connection, n requests on it (curl reuses
 * it for every URL of one invocation); each request's own time in ms.
 */
async function reusedTimes(client: StartedTestContainer, url: string, n: number): Promise<number[]> {
  const urls = Array(n).fill(`-o /dev/null '${url}'`).join(' ');
  const { output, exitCode } = await sh(client, `curl -g -s --max-time 20 -w '%{time_total} %{num_connects}\\n' ${urls}`);
  if (exitCode !== 0) throw new Error(`curl failed (${exitCode}): ${output}`);
  const lines = output.trim().split('\n');
  // Every request after the first reused the connection (no new connect).
  expect(lines.slice(1).every((l) => l.endsWith(' 0'))).toBe(true);
  return lines.map((l) => Number(l.split(' ')[0]) * 1000);
}

/**
 * One connection from the container to host:9001 (the TCP echo), held open by
 * nc: lines appended to /tmp/<name>in go out at once (a writer keeps the fifo
 * open), echoes land in /tmp/<name>out, /tmp/<name>end says "closed" once nc ended.
 */
async function openEcho(c: StartedTestContainer, name: string, host: string): Promise<void> {
  const f = `/tmp/${name}`;
  const r = await sh(
    c,
    `rm -f ${f}in ${f}out ${f}end; mkfifo ${f}in; (tail -f /dev/null > ${f}in &) ; ` +
      `((nc ${host} 9001 < ${f}in > ${f}out; echo closed > ${f}end) > /dev/null 2>&1 &) ; sleep 0.3; ss -Htn state established '( dport = :9001 )' | wc -l`,
  );
  if (r.exitCode !== 0 || Number(r.output.trim()) < 1) throw new Error(`no connection to ${host}:9001: ${r.output}`);
}

/** Ends every connection openEcho made. */
async function closeEchoes(c: StartedTestContainer): Promise<void> {
  await sh(c, 'pkill -x nc; pkill -x tail; true');
}

/** Sends a line on an open nc connection (its input fifo); whether the echo came back within ms. */
async function echoed(c: StartedTestContainer, fifo: string, out: string, line: string, ms: number): Promise<boolean> {
  const r = await sh(
    c,
    `echo ${line} >> ${fifo}; for i in $(seq ${ms / 50}); do grep -qx ${line} ${out} && exit 0; sleep 0.05; done; exit 1`,
  );
  return r.exitCode === 0;
}

/** The round trip of one line on an open nc connection, in ms (polled every 5 ms). */
async function echoMs(c: StartedTestContainer, fifo: string, out: string, line: string): Promise<number> {
  const r = await sh(
    c,
    `t0=$(date +%s%N); echo ${line} >> ${fifo}; for i in $(seq 600); do grep -qx ${line} ${out} && break; sleep 0.005; done; ` +
      `grep -qx ${line} ${out} || exit 1; echo $(( ($(date +%s%N) - t0) / 1000 ))`,
  );
  if (r.exitCode !== 0) throw new Error(`no echo of ${line}: ${r.output}`);
  return Number(r.output.trim()) / 1000;
}
