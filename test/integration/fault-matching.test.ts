// What every fault counts as matched, on real containers: an experiment whose
// fault reaches no packet and no connection is 'inconclusive' (not
// 'validated'), a plain chaos.inject() that reached nothing warns, and one
// target holds 64 faults of a kind at once, each counting on its own.
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { chaos } from 'vitest-chaos';
import { ipOf, startClient, startHttpServer, stopAll } from '../helpers/containers.js';
import { udpEchoRound } from '../helpers/udp.js';

describe('faults count what they matched', () => {
  let server: StartedTestContainer;
  let bystander: StartedTestContainer;
  let url: string;
  beforeAll(async () => {
    [server, bystander] = await Promise.all([startHttpServer('matching-server'), startClient('matching-bystander')]);
    url = `http://${ipOf(server)}:8080/`;
  });
  afterAll(() => stopAll(server, bystander));

  const experiment = (name: string, fault: Parameters<typeof chaos.inject>[0]) =>
    chaos.experiment({
      name,
      hypothesis: 'Given 20 req/s from the host, errors stay under 50%',
      steadyState: { load: { url, rps: 20, timeoutMs: 3000 }, slos: { errorRate: { max: 0.5 } }, windowMs: 500 },
      baselineMs: 1000,
      faults: [fault],
      durationMs: 1500,
    });

  it("is 'inconclusive' when its fault matched no packet and no connection, naming the fault and why", async () => {
    // The bystander never talks to the server: a partition from it cuts nothing.
    const r = await experiment('partition from a bystander', { kind: 'network-partition', target: server, peer: bystander });
    expect(r.breaches).toEqual([]);
    expect(r.verdict).toBe('inconclusive');
    expect(r.faults[0]).toMatchObject({ kind: 'network-partition', matched: 0 });
    expect(r.faults[0]!.stats).toMatchObject({ ingressSeen: 0, egressSeen: 0 });
    expect(r.reason).toMatch(
      /^every SLO held, but nothing was tested: fault 0 network-partition\(.*peer=.*\) on \S+ matched nothing: 0 packets or connections of the target/,
    );
    let message = '';
    try {
      expect(r).toHoldSteadyState();
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('was inconclusive:');
    expect(message).toContain('network-partition');
  });

  it("is 'validated' as before when its fault reached the traffic", async () => {
    // Loss of 2% on what the server sends the load: TCP retransmits, no errors.
    const r = await experiment('2% loss', { kind: 'network-loss', target: server, percent: 2, direction: 'egress' });
    expect(r.verdict).toBe('validated');
    expect(r.faults[0]!.matched).toBeGreaterThan(20);
    expect(r.faults[0]!.matched).toBe(r.faults[0]!.stats.egressSeen);
  });

  it('warns, naming the fault, when a plain chaos.inject() matched nothing by its revert', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const quiet = await chaos.inject({ kind: 'network-loss', target: server, peer: bystander, percent: 50 });
      await fetch(url).then((res) => res.text());
      expect(quiet.matched()).toBe(0);
      await quiet.revert();
      const busy = await chaos.inject({ kind: 'network-loss', target: server, percent: 0 });
      await fetch(url).then((res) => res.text());
      expect(busy.matched()).toBeGreaterThan(0);
      await busy.revert();
      const lines = warn.mock.calls.map((c) => String(c[0]));
      expect(lines.filter((l) => l.includes('matched nothing'))).toHaveLength(1);
      expect(lines.find((l) => l.includes('matched nothing'))).toMatch(
        /^vitest-chaos: network-loss\(.*percent=50.*\) on \S+ seed=\d+ matched nothing while in force \(0 packets the target sent or received/,
      );
    } finally {
      warn.mockRestore();
    }
  });

  it('holds 64 faults of one kind on one target, each counting every packet it matched; the 65th is refused', async () => {
    const faults = [];
    try {
      for (let i = 0; i < 64; i++) faults.push(await chaos.inject({ kind: 'network-loss', target: server, percent: 0, port: 9000 }));
      await expect(chaos.inject({ kind: 'network-loss', target: server, percent: 0, port: 9000 })).rejects.toThrow(
        /already holds 64 faults of this kind/,
      );
      const r = await udpEchoRound(ipOf(server), 9000, 100, 300);
      expect(r.lost).toBe(0);
      // Every fault, the 64th (bit 63 of the slot mask) included, saw each datagram both ways.
      const counted = faults.map((f) => f.stats());
      expect(counted.map((s) => [s.ingressSeen, s.egressSeen])).toEqual(Array.from({ length: 64 }, () => [100, 100]));
      expect(counted.every((s) => s.ingressDropped === 0 && s.egressDropped === 0)).toBe(true);
    } finally {
      for (const f of faults) await f.revert();
    }
    // Released: a new fault gets a slot again and starts from zero.
    const again = await chaos.inject({ kind: 'network-loss', target: server, percent: 0, port: 9000 });
    expect(again.stats().ingressSeen).toBe(0);
    await again.revert();
  });
});
