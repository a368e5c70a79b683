// PromQL in steady state, against a real Prometheus (started here, scraping a
// prom-client fixture app every second): a PromQL probe and a PromQL SLO hold
// while the app is healthy, and break when a fault on its backend link makes
// the app's own error counter rise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, type ExperimentResult } from 'vitest-chaos';
import { startDemoSystem, type DemoSystem } from '../../examples/demo-system.js';
import { startMetricsApp, type MetricsApp } from '../helpers/metrics-app.js';
import { hasPrometheus, startPrometheus, type RunningPrometheus } from '../helpers/prometheus.js';

const ERRORS_PER_S = 'sum(rate(fixture_requests_total{outcome="error"}[3s]))';

describe.skipIf(!hasPrometheus())('PromQL probe and SLO', () => {
  let demo: DemoSystem;
  let app: MetricsApp;
  let prom: RunningPrometheus;
  beforeAll(async () => {
    demo = await startDemoSystem();
    // A loaded 2-core machine can take over a second to serve: only a cut link should fail a call.
    app = await startMetricsApp(demo.url.replace('timeoutMs=1000', 'timeoutMs=4000'), 5000);
    prom = await startPrometheus({ fixture: app.target });
    for (let i = 0; i < 5; i++) await fetch(app.url).then((r) => r.text());
    // rate() needs two scrapes in its range before it has a value
    await prom.waitFor(ERRORS_PER_S);
  });
  afterAll(async () => {
    await prom?.stop();
    await app?.stop();
    await demo?.stop();
  });

  const experiment = (name: string, fault: Parameters<typeof chaos.experiment>[0]['faults'][number]) =>
    chaos.experiment({
      name,
      hypothesis: 'Given 10 req/s, the fixture app counts under 0.5 errors/s (as Prometheus sees it)',
      steadyState: {
        load: { url: app.url, rps: 10, timeoutMs: 6000 },
        probes: [{ name: 'prometheus: errors/s', promql: { url: prom.url, query: ERRORS_PER_S }, max: 0.5, intervalMs: 250 }],
        slos: { availability: { min: 0.99 }, promql: [{ name: 'fixture errors/s', url: prom.url, query: ERRORS_PER_S, max: 0.5 }] },
        windowMs: 1000,
      },
      baselineMs: 2000,
      faults: [fault],
      durationMs: 5000,
      abortOnBreach: false,
    });

  it('holds on a healthy app (a mild fault that causes no error)', async () => {
    const before = await app.counts();
    const r: ExperimentResult = await experiment('backend +20 ms', {
      kind: 'network-latency',
      target: demo.api,
      peer: demo.backend,
      latencyMs: 20,
    });
    const after = await app.counts();
    console.info(
      `healthy: ${after.ok - before.ok} ok, ${after.error - before.error} errors; probes ${r.phases.observe!.probes} (${r.phases.observe!.probeFailures} failed); promql samples ${r.phases.observe!.gauges['promql:fixture errors/s']?.samples}`,
    );
    expect(r.verdict).toBe('validated');
    // a loaded machine may fail a rare call; what the SLO judges is the rate Prometheus saw
    expect(after.ok - before.ok).toBeGreaterThan(50);
    expect(after.error - before.error).toBeLessThan((after.ok - before.ok) * 0.05);
    // both were really asked: the probe ran, and the SLO had samples in every phase
    expect(r.phases.observe!.probes).toBeGreaterThan(10);
    expect(r.phases.observe!.probeFailures).toBe(0);
    expect(r.phases.observe!.gauges['promql:fixture errors/s']!.samples).toBeGreaterThan(10);
    expect(r.phases.observe!.gauges['promql:fixture errors/s']!.max).toBeLessThanOrEqual(0.5);
  });

  it('breaks when the backend link is cut: the app counts errors, Prometheus sees them, probe and SLO breach', async () => {
    const before = await app.counts();
    const r = await experiment('backend cut', { kind: 'network-partition', target: demo.api, peer: demo.backend, action: 'reject' });
    const after = await app.counts();
    const promql = r.breaches.filter((b) => b.slo === 'promql');
    const availability = r.breaches.filter((b) => b.slo === 'availability');
    console.info(
      `cut: ${after.error - before.error} errors counted by the app; first PromQL breach ${promql[0]?.actual} errors/s at ${promql[0]?.window.endMs.toFixed(0)} ms (fault at ${r.faults[0]!.injectedAtMs!.toFixed(0)} ms); probe failures ${r.phases.observe!.probeFailures}/${r.phases.observe!.probes}`,
    );
    expect(after.error - before.error).toBeGreaterThan(20);
    expect(r.verdict).toBe('rejected');
    expect(promql.length).toBeGreaterThan(0);
    expect(promql[0]!.actual!).toBeGreaterThan(0.5);
    expect(promql[0]!.phase).toBe('observe');
    expect(promql[0]!.stated).toContain(ERRORS_PER_S);
    expect(availability.length).toBeGreaterThan(0); // the PromQL probe failed
    expect(Object.keys(r.phases.observe!.errorKinds).some((k) => k.startsWith('probe: prometheus: errors/s'))).toBe(true);
    // before the fault, Prometheus saw no errors
    expect(r.breaches.every((b) => b.window.endMs > r.faults[0]!.injectedAtMs!)).toBe(true);
  });
});
