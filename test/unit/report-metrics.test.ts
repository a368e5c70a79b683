// Pure logic of the reports: resilience score, breach runs, metrics rebuilt
// from results, PromQL SLOs judged on recorded samples.
import { describe, expect, it } from 'vitest';
import type { ExperimentResult } from '../../src/experiment/result.js';
import { ChaosMetrics } from '../../src/report/chaos-metrics.js';
import { breachRuns } from '../../src/report/html-report.js';
import { resilienceScore } from '../../src/report/resilience-score.js';
import { outOfBounds } from '../../src/steady-state/promql.js';
import { Recorder } from '../../src/steady-state/recorder.js';
import { evaluate, sloSchema } from '../../src/steady-state/slo.js';

const base: ExperimentResult = {
  name: 'x',
  hypothesis: 'h',
  severity: 'medium',
  verdict: 'validated',
  reason: '',
  seed: 1,
  startedAt: '2026-12-01T00:00:00.000Z',
  durationMs: 5000,
  windowMs: 500,
  slos: {},
  phases: { baseline: null, observe: null, recovery: null },
  breaches: [],
  rollbackMs: null,
  recoveryMs: 120,
  recovered: true,
  faults: [{ kind: 'network-loss', target: 't', seed: 1, params: {}, injectedAtMs: 1000, revertedAtMs: 3000, applyMs: 12, stats: {} }],
  load: null,
  timeline: [],
};
const breach = (endMs: number, actual: number) => ({
  slo: 'errorRate' as const,
  threshold: 0.1,
  actual,
  unit: 'ratio' as const,
  stated: 'max 0.1',
  phase: 'observe' as const,
  window: { startMs: endMs - 500, endMs },
  activeFaults: [],
});

describe('report logic', () => {
  it('weights validated experiments by severity', () => {
    const s = resilienceScore([
      { verdict: 'validated', severity: 'high' },
      { verdict: 'rejected', severity: 'critical' },
      { verdict: 'aborted', severity: 'low' },
    ]);
    expect(s).toEqual({ score: (100 * 3) / 9, validatedWeight: 3, totalWeight: 9 });
    expect(resilienceScore([]).score).toBeNull();
  });

  it('folds consecutive breaching windows into one run, keeping the worst', () => {
    const r = { ...base, breaches: [breach(1100, 0.2), breach(1200, 0.5), breach(1300, 0.3), breach(4000, 0.15)] };
    const runs = breachRuns(r);
    expect(runs.map((x) => [x.startMs, x.endMs, x.windows])).toEqual([
      [1100, 1300, 3],
      [4000, 4000, 1],
    ]);
    expect(runs[0]!.text).toMatch(/^3 windows 1\.10 s–1\.30 s, worst: errorRate 50\.00% > 10\.00%/);
  });

  it('rebuilds the metrics of finished experiments in Prometheus text format', async () => {
    const m = new ChaosMetrics();
    m.recordResult(base);
    m.recordResult({ ...base, verdict: 'aborted', rollbackMs: 3, recoveryMs: null, breaches: [breach(1100, 0.2)] });
    const text = await m.text();
    expect(text).toContain('chaos_experiments_total{verdict="validated"} 1');
    expect(text).toContain('chaos_experiments_total{verdict="aborted"} 1');
    expect(text).toContain('chaos_experiments_total{verdict="rejected"} 0');
    expect(text).toContain('chaos_fault_injections_total{kind="network-loss"} 2');
    expect(text).toContain('chaos_rollbacks_total{reason="breach"} 1');
    expect(text).toContain('chaos_slo_violations_total{slo="errorRate"} 1');
    expect(text).toContain('chaos_active_faults{kind="network-loss"} 0');
    expect(text).toContain('chaos_fault_apply_seconds_bucket{le="0.025",kind="network-loss"} 2');
    expect(text).toContain('chaos_recovery_seconds_count 1');
  });

  it('judges a PromQL SLO on the worst sample of the window; a failed query breaches', () => {
    const slos = sloSchema.parse({ promql: [{ name: 'errs', url: 'http://127.0.0.1:9090', query: 'up', max: 0.5 }] });
    const rec = new Recorder(100, 1000);
    rec.recordGauge('promql:errs', 0.2);
    rec.recordGauge('promql:errs', 0.7);
    const w = rec.window(rec.now() + 100, 1000);
    expect(w.gauges['promql:errs']).toEqual({ min: 0.2, max: 0.7, samples: 2 });
    expect(evaluate(slos, w, null)).toMatchObject([{ slo: 'promql', threshold: 0.5, actual: 0.7, ok: false, unit: 'value' }]);
    rec.recordGauge('promql:errs', Number.NaN);
    expect(evaluate(slos, rec.window(rec.now() + 100, 1000), null)[0]!.ok).toBe(false);
    expect(outOfBounds([0.1, 2], 0, 1)).toBe('2 > max 1');
    expect(outOfBounds([0.5], 1)).toBe('0.5 < min 1');
    expect(sloSchema.safeParse({ promql: [{ name: 'n', url: 'http://x', query: 'up' }] }).error?.issues[0]?.message).toBe(
      'at least one of min or max',
    );
  });
});
