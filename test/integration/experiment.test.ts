// Steady-state hypotheses against a service whose latency depends on a backend
// it calls (the demo system: api -> backend, two containers on a network).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, type ExperimentResult } from 'vitest-chaos';
import { startDemoSystem, type DemoSystem } from '../../examples/demo-system.js';

describe('chaos.experiment', () => {
  let demo: DemoSystem;
  beforeAll(async () => {
    demo = await startDemoSystem();
    for (let i = 0; i < 5; i++) await (await fetch(demo.url)).text(); // warm up the api's fetch
  });
  afterAll(() => demo?.stop());

  const latencyExperiment = (latencyMs: number, abortOnBreach: boolean) =>
    chaos.experiment({
      name: `backend +${latencyMs} ms`,
      hypothesis: `Given 40 req/s, when the backend is ${latencyMs} ms slower, p99 stays under 300 ms and errors under 1%`,
      steadyState: {
        load: { url: demo.url, rps: 40, timeoutMs: 2000 },
        slos: { p99: { maxMs: 300 }, errorRate: { max: 0.01 } },
        windowMs: 1000,
      },
      baselineMs: 2000,
      faults: [{ kind: 'network-latency', target: demo.api, peer: demo.backend, latencyMs }],
      durationMs: 3000,
      abortOnBreach,
    });

  it('validates a hypothesis that a mild fault keeps, with the numbers', async () => {
    const r = await latencyExperiment(30, true);
    expect(r).toHoldSteadyState();
    expect(r.verdict).toBe('validated');
    expect(r.breaches).toEqual([]);
    // the fault really was in force: the median moved by about the latency
    expect(r.phases.observe!.p50Ms! - r.phases.baseline!.p50Ms!).toBeGreaterThan(25);
    expect(r.phases.observe!.p99Ms!).toBeLessThan(300);
    expect(r.faults[0]).toMatchObject({ kind: 'network-latency', stats: { connectionsMatched: expect.any(Number) } });
    expect(r.faults[0]!.stats.connectionsMatched).toBeGreaterThan(0);
    // 40 req/s for 3 s: every request the api sends to the backend is held
    expect(r.faults[0]!.stats.packetsDelayed).toBeGreaterThan(80);
    expect(r.phases.observe!.errors).toBe(0);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r); // plain data
  });

  it('rejects a hypothesis that a strong fault breaks, and says which SLO and by how much', async () => {
    const r = await latencyExperiment(400, false);
    expect(r.verdict).toBe('rejected');
    const p99 = r.breaches.filter((b) => b.slo === 'p99');
    expect(p99.length).toBeGreaterThan(0);
    expect(p99[0]!.actual!).toBeGreaterThan(400);
    let message = '';
    try {
      expect(r).toHoldSteadyState();
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('Hypothesis "Given 40 req/s, when the backend is 400 ms slower');
    expect(message).toMatch(
      /p99 \d{3,4}\.\d ms > 300\.0 ms \(max 300 ms\) in window \d+\.\d\d-\d+\.\d\d s \(observe\); faults in force: network-latency\(latencyMs=400/,
    );
  });

  it('aborts on the first breach: every fault reverted within 100 ms, traffic recovers, recovery measured', async () => {
    const r = await chaos.experiment({
      name: 'backend partitioned',
      hypothesis: 'Given 40 req/s, when the backend is unreachable, errors stay under 5%',
      steadyState: { load: { url: demo.url, rps: 40 }, slos: { errorRate: { max: 0.05 } }, windowMs: 500 },
      baselineMs: 1000,
      faults: [{ kind: 'network-partition', target: demo.api, peer: demo.backend, action: 'reject' }],
      durationMs: 5000,
      recovery: { withinMs: 2000 },
    });
    expect(r.verdict).toBe('aborted');
    expect(r.breaches[0]).toMatchObject({ slo: 'errorRate', phase: 'observe' });
    expect(r.rollbackMs!).toBeLessThanOrEqual(100);
    expect(r.faults[0]!.revertedAtMs! - r.faults[0]!.injectedAtMs!).toBeLessThan(2000); // aborted, not run for 5 s
    expect(r.recovered).toBe(true);
    expect(r).toRecoverWithin(2000);
    expect(r.phases.recovery!.errorRate!).toBeLessThan(0.05);
  });

  it("rejects a hypothesis whose recovery.withinMs is shorter than the service's real recovery", async () => {
    // The api's circuit breaker stays open 1.5 s after 3 failures: recovery takes that long.
    const url = `${demo.url}&breakerAfter=3&breakerOpenMs=1500`;
    const run = (withinMs: number) =>
      chaos.experiment({
        name: `breaker, recovery within ${withinMs} ms`,
        hypothesis: `After the backend comes back, the api serves again within ${withinMs} ms`,
        steadyState: { load: { url, rps: 40 }, slos: { errorRate: { max: 0.05 } }, windowMs: 500 },
        baselineMs: 1000,
        faults: [{ kind: 'network-partition', target: demo.api, peer: demo.backend, action: 'reject' }],
        durationMs: 2000,
        recovery: { withinMs },
        abortOnBreach: false,
      });
    const short = await run(300);
    const long = await run(4000);
    const recoveryBreach = short.breaches.find((b) => b.slo === 'recovery');
    expect(recoveryBreach).toBeDefined();
    expect(short.verdict).toBe('rejected');
    expect(short.recoveryMs!).toBeGreaterThan(300);
    expect(() => expect(short).toRecoverWithin(300)).toThrow(/to recover within 300 ms, but it took \d+ ms/);
    expect(long.breaches.find((b) => b.slo === 'recovery')).toBeUndefined();
    expect(long).toRecoverWithin(4000);
    // the breaker's 1.5 s is what recovery measures, give or take a window
    expect(long.recoveryMs!).toBeGreaterThan(700);
    expect(long.recoveryMs!).toBeLessThan(2600);
  });

  it('judges relative SLOs against the baseline of the same run', async () => {
    const r = await chaos.experiment({
      name: 'relative p50',
      hypothesis: 'p50 stays within 1.5x of its baseline',
      steadyState: { load: { url: demo.url, rps: 40 }, slos: { p50: { maxRatio: 1.5 } }, windowMs: 1000 },
      baselineMs: 2000,
      faults: [{ kind: 'network-latency', target: demo.api, peer: demo.backend, latencyMs: 100 }],
      durationMs: 2000,
      abortOnBreach: false,
    });
    const b = r.breaches.find((x) => x.slo === 'p50')!;
    expect(b).toBeDefined();
    expect(b.threshold).toBeCloseTo(1.5 * r.phases.baseline!.p50Ms!, 5);
    expect(b.stated).toBe(`maxRatio 1.5 x baseline ${r.phases.baseline!.p50Ms!.toFixed(1)} ms`);
  });

  it('makes the same random choices for the same seed', async () => {
    const run = (seed: number): Promise<ExperimentResult> =>
      chaos.experiment({
        name: `seeded ${seed}`,
        hypothesis: 'errors under 50% with 10% loss',
        steadyState: { load: { url: demo.url, rps: 50, arrival: 'poisson' }, slos: { errorRate: { max: 0.5 } }, windowMs: 500 },
        baselineMs: 500,
        faults: [{ kind: 'network-loss', target: demo.api, peer: demo.backend, percent: 10 }],
        durationMs: 1000,
        seed,
      });
    const [a, b, c] = [await run(7), await run(7), await run(8)];
    expect(a.faults[0]!.seed).toBe(b.faults[0]!.seed);
    expect(a.load!.scheduleDigest).toBe(b.load!.scheduleDigest);
    expect(c.faults[0]!.seed).not.toBe(a.faults[0]!.seed);
    expect(c.load!.scheduleDigest).not.toBe(a.load!.scheduleDigest);
  });

  it('attaches the result to the test for reporters', async ({ task }) => {
    const r = await latencyExperiment(5, true);
    const meta = task.meta as { vitestChaos?: { experiments: ExperimentResult[] } };
    expect(meta.vitestChaos?.experiments).toEqual([r]);
  });
});

describe('chaos.experiment with bad input', () => {
  const base = {
    name: 'bad',
    hypothesis: 'h',
    steadyState: { load: { url: 'http://127.0.0.1:1/', rps: 10 }, slos: { p99: { maxMs: 100 } } },
    faults: [{ kind: 'network-loss' as const, target: 'x', percent: 10 }],
    durationMs: 2000,
  };
  it.each([
    [
      'an unknown SLO',
      { ...base, steadyState: { ...base.steadyState, slos: { p42: { maxMs: 1 } } } },
      /steadyState\.slos\.p42 is \{"maxMs":1\}; expected no such field/,
    ],
    [
      'a negative rps',
      { ...base, steadyState: { ...base.steadyState, load: { url: 'http://127.0.0.1:1/', rps: -5 } } },
      /steadyState\.load\.rps is -5; expected a rate > 0 requests per second/,
    ],
    [
      'a window longer than the duration',
      { ...base, steadyState: { ...base.steadyState, windowMs: 5000 } },
      /steadyState\.windowMs is 5000; expected a window no longer than durationMs \(2000 ms\)/,
    ],
    [
      'a fault spec the foundation rejects',
      { ...base, faults: [{ kind: 'network-loss', target: 'x', percent: 150 }] },
      /chaos\.inject\(network-loss\): percent is 150/,
    ],
  ])('refuses %s before anything starts', async (_name, opts, message) => {
    const t0 = performance.now();
    await expect(chaos.experiment(opts as never)).rejects.toThrow(message);
    expect(performance.now() - t0).toBeLessThan(1000); // no baseline ran
    expect(chaos.activeFaults()).toEqual([]);
  });
});

describe('chaos.experiment: probes and timelines', () => {
  let demo: DemoSystem;
  beforeAll(async () => {
    demo = await startDemoSystem();
    for (let i = 0; i < 3; i++) await (await fetch(demo.url)).text();
  });
  afterAll(() => demo?.stop());

  it('judges availability from http and tcp probes', async () => {
    const r = await chaos.experiment({
      name: 'probes',
      hypothesis: 'the api answers its probes while the backend is unreachable',
      steadyState: {
        probes: [
          { name: 'api via backend', http: { url: demo.url, status: 200 }, intervalMs: 100 },
          { name: 'api port', tcp: { host: demo.api.getIpAddress(demo.network.getName()), port: 8080 }, intervalMs: 100 },
        ],
        slos: { availability: { min: 0.9 } },
        windowMs: 500,
      },
      baselineMs: 1000,
      faults: [{ kind: 'network-partition', target: demo.api, peer: demo.backend, action: 'reject' }],
      durationMs: 2000,
    });
    expect(r.phases.baseline!.probes).toBeGreaterThan(10);
    expect(r.phases.baseline!.availability).toBe(1);
    expect(r.verdict).toBe('aborted');
    // the http probe fails (502), the tcp probe still passes: about half
    const b = r.breaches[0]!;
    expect(b.slo).toBe('availability');
    expect(b.actual!).toBeLessThan(0.9);
    expect(b.actual!).toBeGreaterThan(0.3);
    expect(Object.keys(r.phases.observe!.errorKinds)).toContain('probe: api via backend: status 502');
  });

  it('runs serial steps one after the other, each for its duration', async () => {
    const r = await chaos.experiment({
      name: 'serial',
      hypothesis: 'errors stay under 90%',
      steadyState: { load: { url: demo.url, rps: 20 }, slos: { errorRate: { max: 0.9 } }, windowMs: 500 },
      baselineMs: 500,
      faults: [
        { atMs: 0, durationMs: 600, fault: { kind: 'network-latency', target: demo.api, peer: demo.backend, latencyMs: 50 } },
        { atMs: 200, durationMs: 600, fault: { kind: 'network-latency', target: demo.api, peer: demo.backend, latencyMs: 100 } },
      ],
      schedule: 'serial',
      durationMs: 2000,
    });
    const [a, b] = r.faults;
    expect(r.verdict).toBe('validated');
    expect(a!.revertedAtMs! - a!.injectedAtMs!).toBeGreaterThanOrEqual(590);
    expect(a!.revertedAtMs! - a!.injectedAtMs!).toBeLessThan(800);
    // The second is timed from the first's revert: its inject starts 200 ms after the first was
    // reverted (never before: the steps do not overlap, however long an inject or revert takes).
    // 195: Node times a timer from its event loop's clock, which can lag this one by a few ms.
    const startOf = (f: typeof a) => f!.injectedAtMs! - f!.applyMs!;
    expect(startOf(b) - a!.revertedAtMs!).toBeGreaterThanOrEqual(195);
    expect(startOf(b) - a!.revertedAtMs!).toBeLessThan(400);
    expect(b!.revertedAtMs! - b!.injectedAtMs!).toBeGreaterThanOrEqual(590);
  });

  it('runs parallel steps at their offsets, overlapping', async () => {
    const r = await chaos.experiment({
      name: 'parallel',
      hypothesis: 'errors stay under 90%',
      steadyState: { load: { url: demo.url, rps: 20 }, slos: { errorRate: { max: 0.9 } }, windowMs: 500 },
      baselineMs: 500,
      faults: [
        { kind: 'network-latency', target: demo.api, peer: demo.backend, latencyMs: 50 },
        { atMs: 500, durationMs: 500, fault: { kind: 'network-loss', target: demo.api, peer: demo.backend, percent: 1 } },
      ],
      durationMs: 1500,
    });
    const [a, b] = r.faults;
    expect(b!.injectedAtMs! - a!.injectedAtMs!).toBeGreaterThanOrEqual(490);
    expect(b!.injectedAtMs! - a!.injectedAtMs!).toBeLessThan(700);
    expect(a!.revertedAtMs!).toBeGreaterThan(b!.revertedAtMs!);
  });
});
