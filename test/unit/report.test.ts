import { describe, expect, it } from 'vitest';
import { describeBreach, summarize } from '../../src/experiment/describe.js';
import type { ExperimentResult } from '../../src/experiment/result.js';
import { formatTable } from '../../src/report/chaos-reporter.js';

const result: ExperimentResult = {
  name: 'db +200 ms',
  hypothesis: 'p99 under 500 ms',
  severity: 'high',
  verdict: 'aborted',
  reason: 'p99',
  seed: 42,
  startedAt: '2026-11-22T00:00:00.000Z',
  durationMs: 9000,
  windowMs: 1000,
  slos: { p99: { maxMs: 500 } },
  phases: { baseline: null, observe: null, recovery: null },
  breaches: [
    {
      slo: 'p99',
      threshold: 500,
      actual: 812.04,
      unit: 'ms',
      stated: 'max 500 ms',
      phase: 'observe',
      window: { startMs: 12000, endMs: 13000 },
      activeFaults: ['network-latency(latencyMs=200) on api'],
    },
  ],
  rollbackMs: 3.21,
  recoveryMs: 150,
  recovered: true,
  faults: [],
  load: null,
  timeline: [],
};

describe('reports', () => {
  it('describe a breach with threshold, actual, window and faults', () => {
    expect(describeBreach(result.breaches[0]!)).toBe(
      'p99 812.0 ms > 500.0 ms (max 500 ms) in window 12.00-13.00 s (observe); faults in force: network-latency(latencyMs=200) on api',
    );
    expect(summarize(result)).toContain('rollback 3.2 ms | recovered in 150 ms | seed 42');
  });
  it('tabulate experiments', () => {
    const t = formatTable([{ test: 't', file: 'f', result }]);
    expect(t).toContain('db +200 ms  aborted  p99 812.0 ms > 500.0 ms (max 500 ms)  3.2 ms    150 ms    -        42');
    const fault = {
      kind: 'network-loss',
      target: 'api-1',
      targets: ['api-1', 'api-3'],
      seed: 1,
      params: {},
      injectedAtMs: 1,
      revertedAtMs: 2,
      applyMs: 1,
      stats: {},
    };
    expect(formatTable([{ test: 't', file: 'f', result: { ...result, faults: [fault] } }])).toMatch(/150 ms {4}api-1\+api-3 {2}42/);
    expect(formatTable([])).toBe('');
  });
  it('say "never" for a recovery that did not happen', () => {
    const b = {
      ...result.breaches[0]!,
      slo: 'recovery' as const,
      actual: null,
      threshold: 2000,
      stated: 'within 2000 ms',
      activeFaults: [],
    };
    expect(describeBreach(b)).toBe('recovery never within 2000.0 ms (within 2000 ms) in window 12.00-13.00 s (observe)');
  });
});
