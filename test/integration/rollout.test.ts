// Gradual rollout in an experiment: a partition of the demo system's backend
// replicas (three containers behind the api, spread by Docker's DNS) goes to 1,
// then 2, then all of them; the error-rate SLO holds at step 1 and breaks at
// step 2, where the rollout stops. And an experiment in dry run: load and
// probes run, the baseline is measured, nothing is applied.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, createChaos } from 'vitest-chaos';
import { startDemoSystem, type DemoSystem } from '../../examples/demo-system.js';

describe('rollout and dry-run experiments', () => {
  let demo: DemoSystem;
  const served = async () =>
    Promise.all(
      demo.backends.map(
        async (b) =>
          ((await (await fetch(`http://${b.getIpAddress(demo.network.getName())}:8080/stats`)).json()) as { httpRequests: number })
            .httpRequests,
      ),
    );

  beforeAll(async () => {
    demo = await startDemoSystem(5, { backendReplicas: 3 });
    const before = await served();
    for (let i = 0; i < 60; i++) await (await fetch(demo.url)).text();
    const after = await served();
    const spread = after.map((n, i) => n - before[i]!);
    console.info(`60 calls through the api reached the backend replicas ${JSON.stringify(spread)}`);
    for (const n of spread) expect(n).toBeGreaterThan(5); // the api's calls do spread over the three
  });
  afterAll(() => demo?.stop());
  // The api waits up to 2 s for a backend: on this loaded machine a healthy call can take most
  // of a second, and only the calls to a cut-off replica should fail.
  const patientUrl = () => demo.url.replace('timeoutMs=1000', 'timeoutMs=2000');

  it('breaches at step 2 of [1, 2, "all"], stops there, with the step-1 windows validated', { timeout: 90_000 }, async () => {
    const r = await chaos.experiment({
      name: 'backend replicas partitioned, gradually',
      // One replica of three cut off fails a third of the calls, two fail two thirds: 55% lies
      // between, and 3 s windows hold enough calls (60)
      // that a third does not reach it by chance.
      hypothesis: 'Given 20 req/s, while backend replicas are cut off one by one, errors stay under 55%',
      steadyState: { load: { url: patientUrl(), rps: 20, timeoutMs: 5000 }, slos: { errorRate: { max: 0.55 } }, windowMs: 3000 },
      baselineMs: 3000,
      faults: [{ kind: 'network-partition', target: demo.backends, seed: 4 }],
      rollout: { steps: [1, 2, 'all'], holdMs: 6000 },
      durationMs: 18_000,
      recovery: { withinMs: 3000 },
    });
    const steps = r.rollout!.steps;
    console.info(
      `rollout: ${r.verdict}; ${r.reason}\n` +
        steps
          .map(
            (s, k) =>
              `  step ${k + 1} (${s.step}): ${s.targets.flat().join(', ')}; ${s.windows} windows, ${s.breachedWindows} breached, ${(s.startMs / 1000).toFixed(2)}-${(s.endMs / 1000).toFixed(2)} s`,
          )
          .join('\n') +
        `\n  error rate per window: ${r.timeline
          .filter((p) => p.phase === 'observe')
          .map((p) => p.errorRate?.toFixed(2))
          .join(' ')}`,
    );
    expect(r.verdict).toBe('aborted');
    expect(r.rollout).toMatchObject({ reached: 2, reachedStep: 2, breachedAt: 2 });
    expect(steps).toHaveLength(2); // 'all' never came
    expect(steps[0]!.targets).toEqual([[expect.any(String)]]);
    expect(steps[1]!.targets[0]).toHaveLength(2);
    expect(steps[1]!.targets[0]![0]).toBe(steps[0]!.targets[0]![0]); // widened, not re-chosen
    expect(steps[0]!.windows).toBeGreaterThan(10); // judged every 100 ms once a whole window lies in the step
    expect(steps[0]!.breachedWindows).toBe(0);
    expect(steps[1]!.breachedWindows).toBeGreaterThan(0);
    expect(r.breaches[0]).toMatchObject({ slo: 'errorRate', phase: 'observe' });
    expect(r.breaches[0]!.window.endMs).toBeGreaterThan(steps[1]!.startMs); // closed while step 2 held
    // step 1 did fault its replica: a third of the calls failed, under the 50% limit
    const step1 = r.timeline.filter((p) => p.phase === 'observe' && p.endMs - 3000 >= steps[0]!.startMs && p.endMs <= steps[0]!.endMs);
    expect(Math.max(...step1.map((p) => p.errorRate ?? 0))).toBeGreaterThan(0.15);
    expect(r.reason).toContain('rollout stopped at step 2 of 3 (2 target(s))');
    expect(r.faults[0]!.targets).toHaveLength(2);
    expect(r.recovered).toBe(true);
  });

  it('in dry run reports "dry-run" with the baseline measured and traffic untouched', async () => {
    const dry = createChaos({ dryRun: true, progress: false });
    const r = await dry.experiment({
      name: 'dry partition',
      hypothesis: 'Given 15 req/s, when every backend replica is cut off, errors stay under 1%',
      steadyState: { load: { url: patientUrl(), rps: 15, timeoutMs: 5000 }, slos: { errorRate: { max: 0.01 } }, windowMs: 500 },
      baselineMs: 1000,
      faults: [{ kind: 'network-partition', target: demo.backends, mode: 'all' }],
      durationMs: 2000,
    });
    console.info(`dry run: ${r.verdict}; ${r.reason}; observe ${r.phases.observe?.requests} requests, ${r.phases.observe?.errors} errors`);
    expect(r.verdict).toBe('dry-run');
    expect(r.phases.baseline!.requests).toBeGreaterThan(10);
    expect(r.phases.baseline!.p99Ms).not.toBeNull();
    expect(r.phases.observe!.requests).toBeGreaterThan(20);
    expect(r.phases.observe!.errors).toBe(0); // nothing applied: a real partition of all three fails every call
    expect(r.faults[0]).toMatchObject({ dryRun: true });
    expect(r.faults[0]!.targets).toHaveLength(3);
    expect(r.reason).toMatch(/^dry run: nothing was applied to 3 chosen target\(s\); baseline \d+ requests/);
  });
});
