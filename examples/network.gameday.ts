// Game day against the demo system (an api container that calls a backend
// container for every request). Each hypothesis is an experiment; the report
// line under each test is the finding: verdict, the breached SLO, rollback and
// recovery times, and the seed to replay it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { startDemoSystem, type DemoSystem } from './demo-system.js';

describe('game day: the api and its backend', () => {
  let demo: DemoSystem;
  beforeAll(async () => {
    demo = await startDemoSystem();
    for (let i = 0; i < 5; i++) await (await fetch(demo.url)).text(); // warm up
  });
  afterAll(() => demo?.stop());

  const load = () => ({ url: demo.url, rps: 30, timeoutMs: 2000 });

  it('keeps p99 under 500 ms and errors under 1% when the backend link adds 50 ms', async () => {
    const result = await chaos.experiment({
      name: 'backend +50 ms',
      hypothesis: 'Given 30 req/s, when the backend link adds 50 ms, p99 stays under 500 ms and errors under 1%',
      steadyState: { load: load(), slos: { p99: { maxMs: 500 }, errorRate: { max: 0.01 } } },
      baselineMs: 2000,
      faults: [{ kind: 'network-latency', target: demo.api, peer: demo.backend, latencyMs: 50, jitterMs: 10 }],
      durationMs: 4000,
    });
    expect(result).toHoldSteadyState();
  });

  // A finding: the api gives its backend call 1 s, shorter than TCP's
  // retransmission backoff, so lost packets become failed requests.
  it.fails('keeps errors under 2% through 20% packet loss on the backend link (finding: it does not)', async () => {
    const result = await chaos.experiment({
      name: 'backend link 20% loss',
      hypothesis: 'Given 30 req/s, when 20% of packets to and from the backend are lost, errors stay under 2%',
      steadyState: { load: load(), slos: { errorRate: { max: 0.02 } } },
      baselineMs: 2000,
      faults: [{ kind: 'network-loss', target: demo.api, peer: demo.backend, percent: 20 }],
      durationMs: 4000,
    });
    expect(result).toHoldSteadyState();
  });

  // A known finding, kept as a test: the api has no latency budget for its
  // backend, so a slow backend is passed straight on to its users.
  it.fails('keeps p99 under 250 ms when the backend is 300 ms slower (finding: it does not)', async () => {
    const result = await chaos.experiment({
      name: 'backend +300 ms',
      hypothesis: 'Given 30 req/s, when the backend is 300 ms slower, p99 stays under 250 ms',
      steadyState: { load: load(), slos: { p99: { maxMs: 250 }, errorRate: { max: 0.01 } }, windowMs: 1000 },
      baselineMs: 2000,
      faults: [{ kind: 'network-latency', target: demo.api, peer: demo.backend, latencyMs: 300 }],
      durationMs: 3000,
    });
    expect(result).toHoldSteadyState();
  });

  it('recovers within 3 s of the backend coming back, circuit breaker included', async () => {
    const result = await chaos.experiment({
      name: 'backend partitioned, breaker',
      hypothesis: 'When the backend is unreachable for 2 s, the api (breaker: 3 failures, open 1.5 s) serves again within 3 s',
      steadyState: {
        load: { ...load(), url: `${demo.url}&breakerAfter=3&breakerOpenMs=1500` },
        slos: { errorRate: { max: 0.05 } },
        windowMs: 500,
      },
      baselineMs: 1000,
      faults: [{ kind: 'network-partition', target: demo.api, peer: demo.backend, action: 'reject' }],
      durationMs: 2000,
      abortOnBreach: false,
      recovery: { withinMs: 3000 },
    });
    expect(result.breaches.some((b) => b.slo === 'errorRate')).toBe(true); // the outage is seen
    expect(result).toRecoverWithin(3000);
  });

  it('stops the experiment at the first breach and rolls every fault back within 100 ms', async () => {
    const result = await chaos.experiment({
      name: 'backend drops everything',
      hypothesis: 'When the backend silently drops, errors stay under 5%',
      steadyState: { load: load(), slos: { errorRate: { max: 0.05 }, p99: { maxMs: 900 } }, windowMs: 500 },
      baselineMs: 1000,
      faults: [{ kind: 'network-partition', target: demo.api, peer: demo.backend, action: 'drop' }],
      durationMs: 10_000,
      recovery: { withinMs: 3000 },
    });
    expect(result.verdict).toBe('aborted');
    expect(result.rollbackMs!).toBeLessThanOrEqual(100);
    expect(result).toRecoverWithin(3000);
  });
});
