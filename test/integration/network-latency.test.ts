import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { curlTimes, ipOf, startClient, startHttpServer, stopAll } from '../helpers/containers.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { median, quantile } from '../helpers/stats.js';
import { cgroupDirOf } from '../helpers/target-info.js';

const ROUNDS = 40;

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
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  let url: string;

  beforeAll(async () => {
    [server, target, control] = await Promise.all([
      startHttpServer('latency-server'),
      startClient('latency-target'),
      startClient('latency-control'),
    ]);
    url = `http://${ipOf(server)}:8080/`;
  });
  afterAll(() => stopAll(server, target, control));

  it('adds 100 ms per round trip to connections the target opens, and nothing after revert', async () => {
    const base = median(await curlTimes(target, url, ROUNDS));
    const baseControl = median(await curlTimes(control, url, ROUNDS));
    const baseHost = median(await hostTimes(url, ROUNDS));

    const fault = await chaos.inject({ kind: 'network-latency', target, latencyMs: 100, peer: server });
    const slow = median(await curlTimes(target, url, ROUNDS));
    const controlDuring = median(await curlTimes(control, url, ROUNDS));
    const hostDuring = median(await hostTimes(url, ROUNDS));
    const stats = fault.stats();
    await fault.revert();
    const after = median(await curlTimes(target, url, ROUNDS));

    console.info(
      `latency 100 ms: target median ${base.toFixed(1)} -> ${slow.toFixed(1)} -> ${after.toFixed(1)} ms; control ${baseControl.toFixed(1)} -> ${controlDuring.toFixed(1)} ms; host ${baseHost.toFixed(1)} -> ${hostDuring.toFixed(1)} ms`,
    );
    expect(slow - base).toBeGreaterThanOrEqual(95);
    expect(slow - base).toBeLessThanOrEqual(105);
    expect(stats.connectsRedirected).toBe(ROUNDS);
    expect(stats.connections).toBe(ROUNDS);
    expect(controlDuring - baseControl).toBeLessThan(5);
    expect(hostDuring - baseHost).toBeLessThan(5);
    expect(after - base).toBeLessThan(5);
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
  });

  it('spreads the delay with jitter, reproducibly for a seed', async () => {
    const fault = await chaos.inject({ kind: 'network-latency', target, latencyMs: 100, jitterMs: 40, seed: 99 });
    const times = await curlTimes(target, url, ROUNDS);
    await fault.revert();
    const spread = quantile(times, 0.9) - quantile(times, 0.1);
    console.info(`latency 100 +/- 40 ms: p10 ${quantile(times, 0.1).toFixed(1)}, median ${median(times).toFixed(1)}, p90 ${quantile(times, 0.9).toFixed(1)} ms`);
    // Uniform +/-40 ms: the 10th-90th percentile range is about 64 ms; no jitter gives about 1 ms.
    expect(spread).toBeGreaterThan(30);
    expect(Math.min(...times)).toBeGreaterThanOrEqual(59);
    expect(Math.max(...times)).toBeLessThan(200); // 140 + the machine's noise under load
    expect(median(times)).toBeGreaterThan(80);
    expect(median(times)).toBeLessThan(120);
  });

  it('applies only to the given port', async () => {
    const fault = await chaos.inject({ kind: 'network-latency', target, latencyMs: 200, port: 9999 });
    const t = median(await curlTimes(target, url, 10));
    const s = fault.stats();
    await fault.revert();
    expect(t).toBeLessThan(50);
    expect(s.connectsRedirected).toBe(0);
  });
});
