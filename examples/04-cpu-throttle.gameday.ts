// 04 CPU throttle. The API may use 0.045 CPU (4.5 ms of every 100 ms). The order flow needs
// between 0.03 and 0.05 of a CPU: at 0.1 its bursts were throttled in 1 period of 40, at 0.05 in
// 7-13 (the mean 1.2-4x: too close to call), at 0.03 in every one and the backlog passed 1 s.
// Hypothesis: slower, not broken: no request fails and p99 stays under 1 s; the latency
// rises (the throttle is felt: mean latency at least 1.5x the baseline's).
import { describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { faultWindow, kernelFacts, kernelOf, perSecond, report, summarize, wall } from './trading/findings.js';
import { orderLoad } from './trading/order-flow.js';
import { tradingStackPerFile } from './trading/per-file.js';

describe('04 CPU throttle', () => {
  const file = tradingStackPerFile();

  it('under a CPU quota the API is slower but answers every request', async () => {
    const { stack, flow } = file;
    const result = await chaos.experiment({
      name: '04 CPU throttle',
      hypothesis: 'Given 40 req/s of order flow, when the API may use 0.045 CPU, it is slower but no request fails and p99 stays under 1 s',
      severity: 'medium',
      steadyState: { load: orderLoad(flow), slos: { errorRate: { max: 0.01 }, p99: { maxMs: 1000 } }, windowMs: 1000 },
      baselineMs: 2000,
      faults: [{ kind: 'cpu-throttle', target: stack.api, cpus: 0.045 }],
      durationMs: 6000,
      recovery: { withinMs: 2000 },
    });
    const base = result.phases.baseline;
    const obs = result.phases.observe;
    // Mean latency from the order flow's outcomes: the quota stalls the requests that arrive
    // in the rest of a throttled period (up to 95 ms), so the tail and the mean rise while the
    // median may not (p50 4.1 -> 6.0 ms with 18 of 41 periods throttled in one run).
    const { from, to } = faultWindow(result);
    const flowBase = summarize(flow.between(wall(result, 0), faultWindow(result).applying));
    const flowObs = summarize(flow.between(from, to));
    report('04 CPU throttle', {
      verdict: result.verdict,
      throttle: result.faults[0]?.stats,
      p50: { baseline: base?.p50Ms, observe: obs?.p50Ms },
      p99: { baseline: base?.p99Ms, observe: obs?.p99Ms },
      mean: { baseline: flowBase.meanMs, observe: flowObs.meanMs },
      errors: obs?.errorRate,
      ...kernelFacts(result, [stack.names.api]),
    });

    expect(result.faults[0]?.stats.throttledPeriods).toBeGreaterThan(0);
    expect(obs?.errorRate).toBe(0);
    expect(flowObs.n).toBeGreaterThan(100);
    // Slower: the quota's stalls (up to 95 ms) in 12-23 periods of 60 over 6 s: the mean 2.5-2.9
    // -> 6.9-35.3 ms (2.4-14x; 2.5-7x in six 4 s runs): how often the order flow outruns its
    // slice varies from run to run, and each stall is long. Observed 6 s so that it averages
    // out. The p99 is no measure of it: the baseline's own p99 is the orders' commits (~31 ms),
    // and the 2 or 3 slowest requests of 160 moved 1.8-8x.
    expect(flowObs.meanMs).toBeGreaterThanOrEqual(1.5 * flowBase.meanMs);
    expect(result).toHoldSteadyState();
    // What the kernel saw: the API's threads waited for a CPU, held back by the quota, far longer
    // than in the baseline, where only the machine's other load delays them. Summed over its
    // threads, per second (runqueueDelayTotalMs): 8-15 -> 145-371 ms/s in seven runs, more than
    // the time the cgroup was throttled. Its p99 is a weaker measure: the stalls are a few waits
    // among hundreds of short ones (at 0.05 CPU one run's p99 was 2.6 ms, 2.9x its baseline).
    const kBase = kernelOf(result, 'baseline', stack.names.api);
    const k = kernelOf(result, 'observe', stack.names.api);
    const stats = result.faults[0]!.stats as { throttledMs: number };
    expect(k.runqueueSamples).toBeGreaterThan(100);
    expect(perSecond(k.runqueueDelayTotalMs, k)).toBeGreaterThanOrEqual(3 * perSecond(kBase.runqueueDelayTotalMs, kBase));
    expect(k.runqueueDelayTotalMs).toBeGreaterThanOrEqual(0.5 * stats.throttledMs);
  });
});
