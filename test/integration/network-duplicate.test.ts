// Duplicates are counted by the receiver: the UDP echo server answers every
// copy it gets (ingress), and the client counts every copy of an echo it gets
// (egress), by sequence number. TCP absorbs them: the data is intact and the
// receiving stack reports the duplicate segments (DSACKs it sent).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { ipOf, startHttpServer } from '../helpers/containers.js';
import { faultContract } from '../helpers/fault-contract.js';
import { tcpEchoDiff, udpPayloadRound } from '../helpers/packets.js';
import { binomialBounds } from '../helpers/stats.js';
import { hostEchoServer } from '../helpers/udp.js';
import { tcxLinksOn, vethOf } from '../helpers/veth.js';

const N = 1000;
const UDP = 9000;
// Copies add load on the single-threaded echo server: one datagram a ms keeps
// its socket buffer from overflowing on 2 busy cores.
const round = (host: string, port: number, n: number) => udpPayloadRound(host, port, n, 500, 1);

function tcpExt(pid: number, field: string): number {
  const lines = readFileSync(`/proc/${pid}/net/netstat`, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('TcpExt:'));
  const i = (lines[0] ?? '').split(/\s+/).indexOf(field);
  return Number((lines[1] ?? '').split(/\s+/)[i]);
}

describe('network-duplicate', () => {
  let host: Awaited<ReturnType<typeof hostEchoServer>>;
  beforeAll(async () => {
    host = await hostEchoServer();
  });
  afterAll(() => host?.close());

  const env = faultContract({
    kind: 'network-duplicate',
    start: (name) => startHttpServer(name),
    params: () => ({ percent: 100, direction: 'egress', port: UDP }),
    measure: async (c) => {
      const r = await round(ipOf(c), UDP, 100);
      return { distinct: r.distinct, duplicates: r.duplicates };
    },
    // One copy per packet, whatever the number of faults that drew it.
    affected: (m) => expect(m).toEqual({ distinct: 100, duplicates: 100 }),
    normal: (m) => expect(m).toEqual({ distinct: 100, duplicates: 0 }),
    counts: (s) => expect([s.egressSeen, s.egressDuplicated]).toEqual([100, 100]),
    applied: async (c) => tcxLinksOn((await vethOf(c)).hostIfindex),
    host: async () => {
      const r = await round('127.0.0.1', host.port, 100);
      return [r.distinct, r.duplicates];
    },
    bad: [
      ['percent -1', { percent: -1 }, /percent is -1; expected a number from 0 to 100/],
      ['percent as a string', { percent: '10' }, /percent is "10"; expected a number from 0 to 100/],
      ['direction in', { percent: 10, direction: 'in' }, /direction is "in"; expected one of "egress", "ingress", "both"/],
      ['a peer that is no container', { percent: 10, peer: 'nowhere' }, /peer is "nowhere"; expected a started container/],
    ],
    sigkill: 'nothing left',
  });
  let veth: Awaited<ReturnType<typeof vethOf>>;
  // After the contract's beforeAll has started the target (a second beforeAll would run in the same hook list).
  beforeEach(async () => {
    veth ??= await vethOf(env.target);
  });

  it.each([{ direction: 'ingress' as const }, { direction: 'egress' as const }])(
    'delivers 30 percent of the datagrams twice ($direction), counts them in the kernel, and stops on revert',
    async ({ direction }) => {
      const before = await round(ipOf(env.target), UDP, 200);
      expect([before.distinct, before.duplicates]).toEqual([200, 0]);

      const fault = await chaos.inject({ kind: 'network-duplicate', target: env.target, percent: 30, direction, seed: 5 });
      expect(tcxLinksOn(veth.hostIfindex)).toEqual([`${process.pid}:egress`, `${process.pid}:ingress`]);
      const onTarget = await round(ipOf(env.target), UDP, N);
      const s = fault.stats();
      await fault.revert();

      const hits = direction === 'ingress' ? s.ingressDuplicated : s.egressDuplicated;
      console.info(`duplicate ${direction}: ${onTarget.duplicates} extra copies of ${N} datagrams; kernel counted ${hits}`);
      const [lo, hi] = binomialBounds(N, 0.3);
      expect(onTarget.duplicates).toBeGreaterThanOrEqual(lo);
      expect(onTarget.duplicates).toBeLessThanOrEqual(hi);
      // Every copy the kernel made of a datagram reached the receiver; the
      // program also copied the few other packets it saw (ARP), no more.
      const seen = direction === 'ingress' ? s.ingressSeen! : s.egressSeen!;
      expect(hits).toBeGreaterThanOrEqual(onTarget.duplicates);
      expect(hits! - onTarget.duplicates).toBeLessThanOrEqual(seen - N);
      expect([onTarget.distinct, onTarget.corrupted]).toEqual([N, 0]);
      expect(direction === 'ingress' ? s.egressSeen : s.ingressSeen).toBe(0);

      const after = await round(ipOf(env.target), UDP, N);
      expect([after.distinct, after.duplicates]).toEqual([N, 0]);
      expect(tcxLinksOn(veth.hostIfindex)).toEqual([]);
    },
  );

  it('with direction both, copies requests and then every echo of them', async () => {
    const fault = await chaos.inject({ kind: 'network-duplicate', target: env.target, percent: 30, port: UDP, seed: 17 });
    const r = await round(ipOf(env.target), UDP, N);
    const s = fault.stats();
    await fault.revert();
    // Each request copy is echoed, and each echo may be copied on the way out.
    expect(s.ingressSeen).toBe(N);
    expect(s.egressSeen).toBe(N + s.ingressDuplicated!);
    expect(r.received).toBe(N + s.ingressDuplicated! + s.egressDuplicated!);
    // X ~ Bin(N, .3) request copies, Y ~ Bin(N + X, .3) echo copies: E[X + Y] = .69 N,
    // Var[X + Y] = .21 N + (.21 * 1.3 N + .09 * .21 N) + 2 * .3 * .21 N = .6279 N.
    const sd = Math.sqrt(0.6279 * N);
    expect(Math.abs(r.received - N - 0.69 * N)).toBeLessThanOrEqual(4.4 * sd);
  });

  it('TCP data arrives intact, and the receiving stack reports the duplicate segments', async () => {
    const dsack = () => tcpExt(veth.pid, 'TCPDSACKOldSent');
    const before = dsack();
    const fault = await chaos.inject({ kind: 'network-duplicate', target: env.target, percent: 100, direction: 'ingress', port: 9001 });
    const diff = await tcpEchoDiff(ipOf(env.target), 9001, 256 * 1024);
    const s = fault.stats();
    await fault.revert();
    const reported = dsack() - before;
    console.info(`duplicate tcp: ${s.ingressDuplicated} segments copied to the target; it sent ${reported} DSACKs`);
    expect(diff).toBe(0);
    expect(s.ingressDuplicated).toBeGreaterThan(0);
    expect(reported).toBeGreaterThan(0);
  });

  it('replays the same duplicates with the same seed', async () => {
    const counts = [];
    for (let i = 0; i < 2; i++) {
      const f = await chaos.inject({
        kind: 'network-duplicate',
        target: env.target,
        percent: 30,
        direction: 'ingress',
        port: UDP,
        seed: 1234,
      });
      await round(ipOf(env.target), UDP, 300);
      counts.push(f.stats().ingressDuplicated);
      await f.revert();
    }
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts[1]).toBe(counts[0]);
  });
});
