import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { ipOf, sh, startClient, startHttpServer, stopAll } from '../helpers/containers.js';
import { faultContract } from '../helpers/fault-contract.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { cgroupDirOf, gatewayOf } from '../helpers/target-info.js';
import { hostUdpSink } from '../helpers/udp.js';

/** One GET from inside the container: curl's exit code and seconds taken. */
async function probe(c: StartedTestContainer, url: string): Promise<{ exit: number; ms: number }> {
  const { output } = await sh(
    c,
    `s=$(date +%s%N); curl -s -o /dev/null --connect-timeout 2 --max-time 3 '${url}'; e=$?; echo "$e $(( ($(date +%s%N) - s) / 1000000 ))"`,
  );
  const [exit, ms] = output.trim().split('\n').pop()!.split(' ').map(Number);
  return { exit: exit as number, ms: ms as number };
}

async function hostGet(url: string): Promise<number> {
  const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
  await r.text();
  return r.status;
}

describe('network-partition', () => {
  let server: StartedTestContainer;
  let url: string;
  beforeAll(async () => {
    server = await startHttpServer('partition-server');
    url = `http://${ipOf(server)}:8080/`;
  });
  afterAll(() => stopAll(server));

  const env = faultContract({
    kind: 'network-partition',
    start: (name) => startClient(name),
    // 'reject' fails the connect at once: a short measurement; 'drop' has its own case below.
    params: () => ({ peer: server, action: 'reject' }),
    measure: async (c) => (await probe(c, url)).exit,
    affected: (exit) => expect(exit).toBe(7), // curl: failed to connect
    normal: (exit) => expect(exit).toBe(0),
    counts: (s) => expect(s.connectsRejected).toBe(1),
    applied: async (c) => attachedPrograms(await cgroupDirOf(c)),
    host: () => hostGet(url),
    bad: [
      [
        'action reject with direction ingress',
        { action: 'reject', direction: 'ingress' },
        /direction is "ingress"; expected "egress" or "both" with action "reject"/,
      ],
      ['an unknown action', { action: 'cut' }, /action is "cut"; expected one of "drop", "reject"/],
      ['percent', { percent: 50 }, /percent is 50; expected no such field/],
      [
        'a bad CIDR',
        { peer: '10.0.0.0/33' },
        /peer is "10.0.0.0\/33"; expected a started container, "container:<id or name>", or an IPv4 or IPv6 address or CIDR/,
      ],
    ],
    sigkill: 'nothing left',
  });
  const target = () => env.target;

  it("action 'drop' makes requests time out, and counts the dropped packets", async () => {
    expect((await probe(target(), url)).exit).toBe(0);
    const fault = await chaos.inject({ kind: 'network-partition', target: target(), peer: server, action: 'drop' });
    const during = await probe(target(), url);
    const stats = fault.stats();
    await fault.revert();
    const after = await probe(target(), url);

    expect(during.exit).toBe(28); // curl: operation timed out
    expect(during.ms).toBeGreaterThanOrEqual(1900);
    expect(stats.egressDropped).toBeGreaterThan(0); // SYN retransmissions
    expect(after.exit).toBe(0);
  });

  it("action 'reject' fails the connect at once", async () => {
    const fault = await chaos.inject({ kind: 'network-partition', target: target(), peer: server, action: 'reject' });
    const during = await probe(target(), url);
    const stats = fault.stats();
    await fault.revert();
    const after = await probe(target(), url);

    expect(during.exit).toBe(7); // curl: failed to connect
    expect(during.ms).toBeLessThan(500);
    expect(stats.connectsRejected).toBe(1);
    expect(after.exit).toBe(0);
  });

  it('one way (egress): what the target sends is lost, what it receives still arrives', async () => {
    const gateway = await gatewayOf(target());
    const sink = await hostUdpSink(gateway);
    const send = (n: number) => sh(target(), `for i in $(seq ${n}); do echo "x$i" > /dev/udp/${gateway}/${sink.port}; done`);
    // A listener inside the target counts what the host sends it.
    await sh(target(), 'rm -f /tmp/got; (timeout 5 nc -u -l -p 5000 > /tmp/got &) ; sleep 0.2');
    await send(20);
    await new Promise((r) => setTimeout(r, 100));
    const baseline = sink.count();

    const fault = await chaos.inject({ kind: 'network-partition', target: target(), direction: 'egress' });
    await send(20);
    const dgram = await import('node:dgram');
    const out = dgram.createSocket('udp4');
    for (let i = 0; i < 20; i++) out.send(`in${i}\n`, 5000, ipOf(target()));
    await new Promise((r) => setTimeout(r, 300));
    out.close();
    const sentDuring = sink.count() - baseline;
    const received = (await sh(target(), 'cat /tmp/got | grep -c "^in"')).output.trim();
    await fault.revert();
    await send(20);
    await new Promise((r) => setTimeout(r, 100));
    const sentAfter = sink.count() - baseline - sentDuring;
    sink.close();

    expect(baseline).toBe(20);
    expect(sentDuring).toBe(0);
    expect(Number(received)).toBe(20);
    expect(sentAfter).toBe(20);
  });
});
