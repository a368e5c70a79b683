import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { curlTimes, ipOf, startClient, startHttpServer, stopAll } from '../helpers/containers.js';
import { faultContract } from '../helpers/fault-contract.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { median, quantile } from '../helpers/stats.js';
import { cgroupDirOf } from '../helpers/target-info.js';

const ROUNDS = 40;
const LATENCY = 200;

async function hostTimes(url: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await fetch(url, { headers: { connection: 'close' } });
    await r.text();
    out.push(performance.now() - t0);
  }
  return out;
}

describe('network-latency', () => {
  let server: StartedTestContainer;
  let url: string;
  beforeAll(async () => {
    server = await startHttpServer('latency-server');
    url = `http://${ipOf(server)}:8080/`;
  });
  afterAll(() => stopAll(server));

  const env = faultContract({
    kind: 'network-latency',
    start: (name) => startClient(name),
    params: () => ({ latencyMs: LATENCY, peer: server }),
    measure: async (c) => median(await curlTimes(c, url, 5)),
    // A delayed round trip cannot come back early: the lower bound is absolute.
    affected: (ms, base) => {
      expect(ms).toBeGreaterThanOrEqual(LATENCY - 5);
      expect(ms - base).toBeLessThan(2 * LATENCY + 300); // the handshake is held too
    },
    normal: (ms) => expect(ms).toBeLessThan(LATENCY / 2),
    counts: (s) => expect(s.connectionsMatched).toBe(5),
    applied: async (c) => attachedPrograms(await cgroupDirOf(c)),
    host: async () => median(await hostTimes(url, 5)) < LATENCY / 2,
    bad: [
      ['no latencyMs', {}, /latencyMs is missing; expected a number of milliseconds from 0 to 60000/],
      ['negative latencyMs', { latencyMs: -1 }, /latencyMs is -1; expected a number of milliseconds from 0 to 60000/],
      ['an unknown field', { latencyMs: 10, foo: 1 }, /foo is 1; expected no such field/],
    ],
    sigkill: 'reaped by the next run', // the packet path's iptables chains are journaled
  });

  it('adds 100 ms per round trip within 5 ms, as the median of 40 connections shows', async () => {
    const base = median(await curlTimes(env.target, url, ROUNDS));
    const baseHost = median(await hostTimes(url, ROUNDS));
    const fault = await chaos.inject({ kind: 'network-latency', target: env.target, latencyMs: 100, peer: server });
    const slow = median(await curlTimes(env.target, url, ROUNDS));
    const hostDuring = median(await hostTimes(url, ROUNDS));
    const stats = fault.stats();
    await fault.revert();
    console.info(
      `latency 100 ms: target median ${base.toFixed(1)} -> ${slow.toFixed(1)} ms; host ${baseHost.toFixed(1)} -> ${hostDuring.toFixed(1)} ms`,
    );
    // A new connection per request: the SYN is held too, so each gets the latency twice
    // (handshake + request); on an open connection it is once (packet-path.test.ts).
    // A held packet cannot arrive early: the lower bound is absolute (a loaded
    // machine inflates the baseline's median, not the held time).
    expect(slow).toBeGreaterThanOrEqual(198);
    expect(slow - base).toBeLessThanOrEqual(220);
    // Every request's connection, plus at most a late packet of a baseline connection
    // (its last ACK or FIN still on the way when the rules went in): seen once as 41.
    expect(stats.connectionsMatched).toBeGreaterThanOrEqual(ROUNDS);
    expect(stats.connectionsMatched).toBeLessThanOrEqual(ROUNDS + 2);
    expect(hostDuring - baseHost).toBeLessThan(5);
  });

  it('spreads the delay with jitter, reproducibly for a seed', async () => {
    const fault = await chaos.inject({ kind: 'network-latency', target: env.target, latencyMs: 100, jitterMs: 40, seed: 99 });
    const times = await curlTimes(env.target, url, ROUNDS);
    await fault.revert();
    const spread = quantile(times, 0.9) - quantile(times, 0.1);
    console.info(
      `latency 100 +/- 40 ms: p10 ${quantile(times, 0.1).toFixed(1)}, median ${median(times).toFixed(1)}, p90 ${quantile(times, 0.9).toFixed(1)} ms`,
    );
    // Uniform +/-40 ms: the 10th-90th percentile range is about 64 ms; no jitter gives about 1 ms.
    expect(spread).toBeGreaterThan(30);
    // Two held packets per fresh connection (SYN, request), order kept.
    expect(Math.min(...times)).toBeGreaterThanOrEqual(118);
    // The 90th percentile, not the maximum: one scheduling spike on a loaded machine is not jitter.
    expect(quantile(times, 0.9)).toBeLessThan(360);
    expect(median(times)).toBeGreaterThan(170);
    expect(median(times)).toBeLessThan(270);
  });

  it('applies only to the given port', async () => {
    const fault = await chaos.inject({ kind: 'network-latency', target: env.target, latencyMs: 200, port: 9999 });
    const t = median(await curlTimes(env.target, url, 10));
    const s = fault.stats();
    await fault.revert();
    expect(t).toBeLessThan(50);
    expect(s.connectionsMatched).toBe(0);
  });
});
