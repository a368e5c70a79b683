// 04 CPU throttle. The API may use 0.1 CPU (10 ms of every 100 ms).
// Hypothesis: slower, not broken: no request fails and p99 stays under 1 s; the latency
// rises (the throttle is felt: p50 at least 1.5x the baseline's; 3-7x measured here).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { kernelOf, report } from './trading/findings.js';
import { orderFlow, orderLoad, warmUp, type OrderFlow } from './trading/order-flow.js';
import { startTradingStack, type TradingStack } from './trading/stack.js';

describe('04 CPU throttle', () => {
  let stack: TradingStack;
  let flow: OrderFlow;
  beforeAll(async () => {
    stack = await startTradingStack();
    await warmUp(stack.url);
    flow = orderFlow(stack.url);
  });
  afterAll(() => stack?.stop());

  it('under a CPU quota the API is slower but answers every request', async () => {
    const result = await chaos.experiment({
      name: '04 CPU throttle',
      hypothesis: 'Given 40 req/s of order flow, when the API may use 0.1 CPU, it is slower but no request fails and p99 stays under 1 s',
      severity: 'medium',
      steadyState: { load: orderLoad(flow), slos: { errorRate: { max: 0.01 }, p99: { maxMs: 1000 } }, windowMs: 1000 },
      baselineMs: 2000,
      faults: [{ kind: 'cpu-throttle', target: stack.api, cpus: 0.1 }],
      durationMs: 4000,
      recovery: { withinMs: 2000 },
    });
    const base = result.phases.baseline;
    const obs = result.phases.observe;
    report('04 CPU throttle', {
      verdict: result.verdict,
      throttle: result.faults[0]?.stats,
      p50: { baseline: base?.p50Ms, observe: obs?.p50Ms },
      p99: { baseline: base?.p99Ms, observe: obs?.p99Ms },
      errors: obs?.errorRate,
    });

    expect(result.faults[0]?.stats.throttledPeriods).toBeGreaterThan(0);
    expect(obs?.errorRate).toBe(0);
    expect(obs!.p50Ms!).toBeGreaterThanOrEqual(1.5 * base!.p50Ms!);
    expect(result).toHoldSteadyState();
    // The kernel saw the API's threads wait for a CPU (issue 9 item 5).
    const k = kernelOf(result, 'observe', stack.names.api);
    if (k) expect(k.runqueueDelayP99Us).toBeGreaterThan(kernelOf(result, 'baseline', stack.names.api)?.runqueueDelayP99Us ?? 0);
  });
});
