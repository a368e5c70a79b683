// Corruption is measured where the receiver sees it: each corrupted datagram
// either reaches the receiving application with a flipped byte (the sender's
// checksum was offloaded, so the receiving stack trusts it: the usual case on
// a veth) or is dropped by the receiving stack as a checksum error (counted in
// /proc/net/snmp of the receiver's network namespace). Their sum must equal
// what the kernel program counted.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { ipOf, startHttpServer } from '../helpers/containers.js';
import { faultContract } from '../helpers/fault-contract.js';
import { snmpCounter, tcpEchoDiff, udpPayloadRound } from '../helpers/packets.js';
import { binomialBounds } from '../helpers/stats.js';
import { hostEchoServer } from '../helpers/udp.js';
import { tcxLinksOn, vethOf } from '../helpers/veth.js';

const N = 1000;
const UDP = 9000;
// One datagram a ms: the single-threaded echo server keeps up on 2 busy cores,
// so every datagram not corrupted comes back.
const round = (host: string, port: number, n: number) => udpPayloadRound(host, port, n, 500, 1);

describe('network-corrupt', () => {
  let host: Awaited<ReturnType<typeof hostEchoServer>>;
  beforeAll(async () => {
    host = await hostEchoServer();
  });
  afterAll(() => host?.close());

  const env = faultContract({
    kind: 'network-corrupt',
    start: (name) => startHttpServer(name),
    params: () => ({ percent: 100, direction: 'ingress', port: UDP }),
    // Intact datagrams that came back, and corrupted ones (the others were dropped as checksum errors).
    measure: async (c) => {
      const r = await round(ipOf(c), UDP, 100);
      return { intact: r.distinct, corrupted: r.corrupted };
    },
    // Every datagram corrupted. (CI once saw 1 of 100 "intact": a flipped digit of its sequence
    // number had made it another datagram's payload; udpPayloadRound now writes the number twice.)
    affected: (m) => expect(m).toEqual({ intact: 0, corrupted: 100 }),
    normal: (m) => expect(m).toEqual({ intact: 100, corrupted: 0 }),
    counts: (s) => expect([s.ingressSeen, s.ingressCorrupted]).toEqual([100, 100]),
    applied: async (c) => tcxLinksOn((await vethOf(c)).hostIfindex),
    host: async () => (await round('127.0.0.1', host.port, 100)).distinct,
    bad: [
      ['percent 101', { percent: 101 }, /percent is 101; expected a number from 0 to 100/],
      [
        'direction sideways',
        { percent: 10, direction: 'sideways' },
        /direction is "sideways"; expected one of "egress", "ingress", "both"/,
      ],
      ['an unknown field', { percent: 10, bytes: 2 }, /bytes is 2; expected no such field/],
      ['port 0', { percent: 10, port: 0 }, /port is 0; expected an integer port from 1 to 65535/],
    ],
    sigkill: 'nothing left',
  });
  let veth: Awaited<ReturnType<typeof vethOf>>;
  // After the contract's beforeAll has started the target (a second beforeAll would run in the same hook list).
  beforeEach(async () => {
    veth ??= await vethOf(env.target);
  });

  it.each([{ direction: 'ingress' as const }, { direction: 'egress' as const }])(
    'corrupts 30 percent of the datagrams ($direction) as the receiver sees them, and stops on revert',
    async ({ direction }) => {
      const before = await round(ipOf(env.target), UDP, 200);
      expect(before.corrupted + before.sent - before.distinct).toBe(0);
      // The receiver of a corrupted datagram: the target's stack (ingress) or the host's (egress).
      const csum = () => snmpCounter(direction === 'ingress' ? veth.pid : 'self', 'Udp', 'InCsumErrors');
      const csumBefore = csum();

      const fault = await chaos.inject({ kind: 'network-corrupt', target: env.target, percent: 30, direction, seed: 7 });
      expect(tcxLinksOn(veth.hostIfindex)).toEqual([`${process.pid}:egress`, `${process.pid}:ingress`]);
      const onTarget = await round(ipOf(env.target), UDP, N);
      const s = fault.stats();
      const csumErrors = csum() - csumBefore;
      await fault.revert();

      const hits = direction === 'ingress' ? s.ingressCorrupted : s.egressCorrupted;
      const seen = direction === 'ingress' ? s.ingressSeen : s.egressSeen;
      console.info(
        `corrupt ${direction}: ${onTarget.corrupted} of ${N} datagrams came back corrupted, ` +
          `${csumErrors} dropped as checksum errors; kernel counted ${hits} (${direction === 'ingress' ? s.ingressOffloaded : s.egressOffloaded} offloaded) of ${seen}`,
      );
      const [lo, hi] = binomialBounds(N, 0.3);
      expect(hits).toBeGreaterThanOrEqual(lo);
      expect(hits).toBeLessThanOrEqual(hi);
      // Every flip is seen by the receiver, one way or the other; nothing else is lost.
      expect(onTarget.corrupted + csumErrors).toBe(hits);
      expect(onTarget.distinct + onTarget.corrupted + csumErrors).toBe(N);
      expect(onTarget.duplicates).toBe(0);
      expect(seen).toBeGreaterThanOrEqual(N); // our datagrams and a few ARP packets, which carry no payload
      expect(direction === 'ingress' ? s.egressSeen : s.ingressSeen).toBe(0);

      const after = await round(ipOf(env.target), UDP, N);
      expect([after.corrupted, after.distinct]).toEqual([0, N]);
      expect(tcxLinksOn(veth.hostIfindex)).toEqual([]);
    },
  );

  it('corrupts TCP data too: the stream carries exactly the flipped bytes the kernel counted', async () => {
    const bytes = 512 * 1024;
    expect(await tcpEchoDiff(ipOf(env.target), 9001, bytes)).toBe(0);
    const csumBefore = snmpCounter('self', 'Tcp', 'InCsumErrors');
    const fault = await chaos.inject({ kind: 'network-corrupt', target: env.target, percent: 100, direction: 'egress', port: 9001 });
    const diff = await tcpEchoDiff(ipOf(env.target), 9001, bytes);
    const s = fault.stats();
    await fault.revert();
    const csumErrors = snmpCounter('self', 'Tcp', 'InCsumErrors') - csumBefore;
    console.info(`corrupt tcp: ${diff} bytes differ in ${bytes}; ${csumErrors} checksum drops; kernel counted ${s.egressCorrupted}`);
    // One flipped byte per data packet (a GSO packet holds many segments); a
    // packet dropped for its checksum is retransmitted intact. A spurious
    // retransmission of data already received is corrupted and counted too, but
    // the receiver discards it as a duplicate: so at most, not exactly, the count.
    expect(s.egressCorrupted).toBeGreaterThan(0);
    expect(diff).toBeGreaterThan(0);
    const counted = s.egressCorrupted ?? 0;
    expect(diff + csumErrors).toBeLessThanOrEqual(counted);
    expect(diff + csumErrors).toBeGreaterThanOrEqual(counted / 2);
    expect(await tcpEchoDiff(ipOf(env.target), 9001, bytes)).toBe(0);
  });

  it('replays the same corruption with the same seed', async () => {
    const counts = [];
    for (let i = 0; i < 2; i++) {
      const f = await chaos.inject({ kind: 'network-corrupt', target: env.target, percent: 30, direction: 'ingress', port: UDP, seed: 99 });
      await round(ipOf(env.target), UDP, 500);
      counts.push(f.stats().ingressCorrupted);
      await f.revert();
    }
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts[1]).toBe(counts[0]);
  });

  it('applies only to the named peer and port', async () => {
    const f1 = await chaos.inject({ kind: 'network-corrupt', target: env.target, percent: 100, peer: '10.255.255.0/24' });
    const f2 = await chaos.inject({ kind: 'network-corrupt', target: env.target, percent: 100, port: 9999 });
    const r = await round(ipOf(env.target), UDP, 200);
    expect(f1.stats().ingressSeen).toBe(0);
    expect(f2.stats().ingressSeen).toBe(0);
    await Promise.all([f1.revert(), f2.revert()]);
    expect([r.corrupted, r.distinct]).toEqual([0, 200]);
  });
});
