// Service level objectives and their verdict on a window. Each is absolute
// (maxMs, max, min, minRps) or relative to the baseline measured in the same
// run (maxRatio, minRatio).
import { z } from 'zod';
import type { WindowStats } from './recorder.js';

/** The recorder's gauge name of a PromQL SLO (its samples are recorded under it). */
export const promqlGauge = (name: string) => `promql:${name}`;

const positive = (what: string) => z.number({ error: what }).positive({ error: what });
const fraction = z
  .number({ error: 'a fraction from 0 to 1' })
  .min(0, { error: 'a fraction from 0 to 1' })
  .max(1, { error: 'a fraction from 0 to 1' });

const latency = z.union(
  [
    z.strictObject({ maxMs: positive('a number of milliseconds > 0') }),
    z.strictObject({ maxRatio: positive('a ratio > 0 (of the baseline)') }),
  ],
  { error: '{ maxMs: number } or { maxRatio: number }' },
);

export const sloSchema = z.strictObject({
  /** Share of failed requests in a window, at most. */
  errorRate: z.strictObject({ max: fraction }).optional(),
  /** Share of passed probe checks (or of successful requests without probes), at least. */
  availability: z.strictObject({ min: fraction }).optional(),
  p50: latency.optional(),
  p95: latency.optional(),
  p99: latency.optional(),
  /** Completed requests per second. */
  throughput: z
    .union([z.strictObject({ minRps: positive('a rate > 0') }), z.strictObject({ minRatio: positive('a ratio > 0 (of the baseline)') })], {
      error: '{ minRps: number } or { minRatio: number }',
    })
    .optional(),
  /**
   * Expressions asked of a Prometheus (instant queries, sampled every intervalMs,
   * default 250 ms); in a window every sample must be within [min, max].
   */
  promql: z
    .array(
      z
        .strictObject({
          name: z.string({ error: 'a non-empty string' }).min(1, { error: 'a non-empty string' }),
          url: z.url({ error: 'the base URL of a Prometheus, e.g. http://127.0.0.1:9090' }),
          query: z.string({ error: 'a PromQL expression' }).min(1, { error: 'a PromQL expression' }),
          min: z.number({ error: 'a number' }).optional(),
          max: z.number({ error: 'a number' }).optional(),
          intervalMs: z.number({ error: 'ms >= 50' }).int({ error: 'ms >= 50' }).min(50, { error: 'ms >= 50' }).optional(),
        })
        .refine((p) => p.min !== undefined || p.max !== undefined, { error: 'at least one of min or max', path: ['max'] }),
    )
    .optional(),
});

export type Slos = z.infer<typeof sloSchema>;
export type SloName = keyof Slos;

export interface SloCheck {
  slo: SloName;
  /** The threshold in force (absolute, after applying a ratio to the baseline). */
  threshold: number;
  actual: number;
  unit: 'ms' | 'ratio' | 'rps' | 'value';
  /** How the threshold was stated, e.g. "maxRatio 2 x baseline 40.1 ms". */
  stated: string;
  ok: boolean;
}

const PCT = { p50: 'p50Ms', p95: 'p95Ms', p99: 'p99Ms' } as const;

/** Checks each SLO that the window has data for. */
export function evaluate(slos: Slos, w: WindowStats, baseline: WindowStats | null): SloCheck[] {
  const out: SloCheck[] = [];
  if (slos.errorRate && w.errorRate !== null) {
    out.push({
      slo: 'errorRate',
      threshold: slos.errorRate.max,
      actual: w.errorRate,
      unit: 'ratio',
      stated: `max ${slos.errorRate.max}`,
      ok: w.errorRate <= slos.errorRate.max,
    });
  }
  if (slos.availability && w.availability !== null) {
    out.push({
      slo: 'availability',
      threshold: slos.availability.min,
      actual: w.availability,
      unit: 'ratio',
      stated: `min ${slos.availability.min}`,
      ok: w.availability >= slos.availability.min,
    });
  }
  for (const name of ['p50', 'p95', 'p99'] as const) {
    const s = slos[name];
    const actual = w[PCT[name]];
    if (!s || actual === null) continue;
    let threshold: number;
    let stated: string;
    if ('maxMs' in s) {
      threshold = s.maxMs;
      stated = `max ${s.maxMs} ms`;
    } else {
      const base = baseline?.[PCT[name]];
      if (base === null || base === undefined) continue;
      threshold = s.maxRatio * base;
      stated = `maxRatio ${s.maxRatio} x baseline ${base.toFixed(1)} ms`;
    }
    out.push({ slo: name, threshold, actual, unit: 'ms', stated, ok: actual <= threshold });
  }
  if (slos.throughput) {
    const t = slos.throughput;
    let threshold: number;
    let stated: string;
    if ('minRps' in t) {
      threshold = t.minRps;
      stated = `min ${t.minRps} req/s`;
    } else {
      threshold = t.minRatio * (baseline?.throughputRps ?? 0);
      stated = `minRatio ${t.minRatio} x baseline ${(baseline?.throughputRps ?? 0).toFixed(1)} req/s`;
    }
    out.push({ slo: 'throughput', threshold, actual: w.throughputRps, unit: 'rps', stated, ok: w.throughputRps >= threshold });
  }
  for (const p of slos.promql ?? []) {
    const g = w.gauges?.[promqlGauge(p.name)];
    if (!g) continue;
    const where = `"${p.name}" (${p.query})`;
    if (p.max !== undefined)
      out.push({ slo: 'promql', threshold: p.max, actual: g.max, unit: 'value', stated: `${where} max ${p.max}`, ok: g.max <= p.max });
    if (p.min !== undefined)
      out.push({ slo: 'promql', threshold: p.min, actual: g.min, unit: 'value', stated: `${where} min ${p.min}`, ok: g.min >= p.min });
  }
  return out;
}

export function formatValue(v: number, unit: SloCheck['unit']): string {
  if (unit === 'ms') return `${v.toFixed(1)} ms`;
  if (unit === 'rps') return `${v.toFixed(1)} req/s`;
  if (unit === 'value') return Number.isNaN(v) ? 'query failed' : `${Number(v.toPrecision(6))}`;
  return `${(v * 100).toFixed(2)}%`;
}
