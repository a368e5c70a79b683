// IPv6 parity: loss, partition and latency on a Docker network with IPv6
// enabled, peers named by IPv6 address and CIDR. Each fault is measured on the
// target, beside a control container on the same network and the same
// target's IPv4 traffic (a rule for an IPv6 peer must leave IPv4 alone).
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { IMAGES, sh, stopAll, testLabels } from '../helpers/containers.js';
import { median } from '../helpers/stats.js';

const docker = new Docker();

// HTTP on 8080 and a UDP echo on 9000, both dual-stack.
const IPV6_SERVER = `
const u = require('dgram').createSocket({ type: 'udp6' });
u.on('message', (m, r) => u.send(m, r.port, r.address));
u.bind(9000, '::');
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

/** `count` pings from `from` to `to` (paced 10 ms), the share of replies lost. */
async function pingLoss(from: StartedTestContainer, to: string, count: number): Promise<number> {
  const { output } = await sh(from, `ping -n -q -c ${count} -i 0.01 -W 1 ${to} 2>&1 | tail -2`);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(output);
  if (!m) throw new Error(`ping ${to}: ${output}`);
  return 1 - Number(m[2]) / Number(m[1]);
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

  it('network-latency delays the IPv6 connections the target opens (connect6 to a proxy on the IPv6 gateway), not the control', async () => {
    const LATENCY = 150;
    const url = `http://[${target.ipv6}]:8080/`;
    const controlUrl = `http://[${control.ipv6}]:8080/`;
    const base = median(ok(await curlMs(client.c, url, 5)));
    // The client container is the target: its connections to the server's IPv6 address.
    const fault = await chaos.inject({ kind: 'network-latency', target: client.c, peer: target.ipv6, latencyMs: LATENCY });
    const during = ok(await curlMs(client.c, url, 5));
    const controlDuring = ok(await curlMs(client.c, controlUrl, 5));
    const s = fault.stats();
    await fault.revert();
    const after = median(ok(await curlMs(client.c, url, 5)));
    console.info(
      `ipv6 latency: base ${base.toFixed(1)} ms, during ${median(during).toFixed(1)} ms, control ${median(controlDuring).toFixed(1)} ms, after ${after.toFixed(1)} ms; redirected ${s.connectsRedirected}, relayed ${s.connections}`,
    );
    expect(during).toHaveLength(5);
    expect(median(during)).toBeGreaterThanOrEqual(LATENCY - 5);
    expect(median(during) - base).toBeLessThan(LATENCY + 300);
    expect(controlDuring).toHaveLength(5);
    expect(median(controlDuring)).toBeLessThan(LATENCY / 2);
    expect([s.connectsRedirected, s.connections]).toEqual([5, 5]);
    expect(after).toBeLessThan(LATENCY / 2);
  });
});
