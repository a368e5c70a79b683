// Corruption is measured where the receiver sees it: each corrupted datagram
// either reaches the receiving application with a flipped byte (the sender's
// checksum was offloaded, so the receiving stack trusts it: the usual case on
// a veth) or is dropped by the receiving stack as a checksum error (counted in
// /proc/net/snmp of the receiver's network namespace). Their sum must equal
// what the kernel program counted.
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, ChaosSpecError } from 'vitest-chaos';
import { ipOf, startHttpServer, stopAll } from '../helpers/containers.js';
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
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  let host: Awaited<ReturnType<typeof hostEchoServer>>;
  let veth: Awaited<ReturnType<typeof vethOf>>;

  beforeAll(async () => {
    [target, control] = await Promise.all([startHttpServer('corrupt-target'), startHttpServer('corrupt-control')]);
    host = await hostEchoServer();
    veth = await vethOf(target);
  });
  afterAll(async () => {
    host?.close();
    await stopAll(target, control);
  });

  it.each([{ direction: 'ingress' as const }, { direction: 'egress' as const }])(
    'corrupts 30 percent of the datagrams ($direction) as the receiver sees them, and stops on revert',
    async ({ direction }) => {
      const before = await Promise.all([round(ipOf(target), UDP, 200), round(ipOf(control), UDP, 200)]);
      expect(before.map((r) => r.corrupted + r.sent - r.distinct)).toEqual([0, 0]);
      // The receiver of a corrupted datagram: the target's stack (ingress) or the host's (egress).
      const csum = () => snmpCounter(direction === 'ingress' ? veth.pid : 'self', 'Udp', 'InCsumErrors');
      const csumBefore = csum();

      const fault = await chaos.inject({ kind: 'network-corrupt', target, percent: 30, direction, seed: 7 });
      expect(tcxLinksOn(veth.hostIfindex)).toEqual([`${process.pid}:egress`, `${process.pid}:ingress`]);
      const onTarget = await round(ipOf(target), UDP, N);
      const onControl = await round(ipOf(control), UDP, N);
      const onHost = await round('127.0.0.1', host.port, N);
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
      // Blast radius: another container and the host are untouched.
      expect([onControl.corrupted, onControl.distinct]).toEqual([0, N]);
      expect([onHost.corrupted, onHost.distinct]).toEqual([0, N]);

      const after = await round(ipOf(target), UDP, N);
      expect([after.corrupted, after.distinct]).toEqual([0, N]);
      expect(tcxLinksOn(veth.hostIfindex)).toEqual([]);
    },
  );

  it('corrupts TCP data too: the stream carries exactly the flipped bytes the kernel counted', async () => {
    const bytes = 512 * 1024;
    expect(await tcpEchoDiff(ipOf(target), 9001, bytes)).toBe(0);
    const csumBefore = snmpCounter('self', 'Tcp', 'InCsumErrors');
    const fault = await chaos.inject({ kind: 'network-corrupt', target, percent: 100, direction: 'egress', port: 9001 });
    const diff = await tcpEchoDiff(ipOf(target), 9001, bytes);
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
    expect(await tcpEchoDiff(ipOf(target), 9001, bytes)).toBe(0);
  });

  it('replays the same corruption with the same seed', async () => {
    const counts = [];
    for (let i = 0; i < 2; i++) {
      const f = await chaos.inject({ kind: 'network-corrupt', target, percent: 30, direction: 'ingress', port: UDP, seed: 99 });
      await round(ipOf(target), UDP, 500);
      counts.push(f.stats().ingressCorrupted);
      await f.revert();
    }
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts[1]).toBe(counts[0]);
  });

  it('applies only to the named peer and port', async () => {
    const f1 = await chaos.inject({ kind: 'network-corrupt', target, percent: 100, peer: '10.255.255.0/24' });
    const f2 = await chaos.inject({ kind: 'network-corrupt', target, percent: 100, port: 9999 });
    const r = await round(ipOf(target), UDP, 200);
    expect(f1.stats().ingressSeen).toBe(0);
    expect(f2.stats().ingressSeen).toBe(0);
    await Promise.all([f1.revert(), f2.revert()]);
    expect([r.corrupted, r.distinct]).toEqual([0, 200]);
  });

  it.each([
    [{ percent: 101 }, /percent is 101; expected a number from 0 to 100/],
    [{ percent: 10, direction: 'sideways' }, /direction is "sideways"; expected one of "egress", "ingress", "both"/],
    [{ percent: 10, bytes: 2 }, /bytes is 2; expected no such field/],
    [{ percent: 10, port: 0 }, /port is 0; expected an integer port from 1 to 65535/],
  ])('refuses %j with a clear error and applies nothing', async (params, message) => {
    const err = await chaos.inject({ kind: 'network-corrupt', target, ...params } as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChaosSpecError);
    expect((err as Error).message).toMatch(message);
    expect(tcxLinksOn(veth.hostIfindex)).toEqual([]);
    expect(chaos.activeFaults()).toEqual([]);
  });

  it('applies twice, reverts twice, and reverts quietly after the target is gone', async () => {
    const a = await chaos.inject({ kind: 'network-corrupt', target, percent: 100, direction: 'ingress', port: UDP });
    const b = await chaos.inject({ kind: 'network-corrupt', target, percent: 100, direction: 'ingress', port: UDP });
    const r = await round(ipOf(target), UDP, 100);
    // A packet is corrupted once, by the first slot that draws it.
    expect(r.corrupted).toBe(100);
    expect(a.stats().ingressCorrupted! + b.stats().ingressCorrupted!).toBe(100);
    await a.revert();
    await a.revert();
    await b.revert();
    await b.revert();
    expect(tcxLinksOn(veth.hostIfindex)).toEqual([]);

    const doomed = await startHttpServer('corrupt-doomed');
    const dv = await vethOf(doomed);
    const f = await chaos.inject({ kind: 'network-corrupt', target: doomed, percent: 50 });
    expect(tcxLinksOn(dv.hostIfindex)).toHaveLength(2);
    await doomed.stop({ timeout: 0 });
    await expect(f.revert()).resolves.toBeUndefined();
    await expect(f.revert()).resolves.toBeUndefined();
    expect(f.active).toBe(false);
  });
});
