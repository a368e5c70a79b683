// PromQL in steady state: ask a Prometheus the value of an expression, as a
// probe (passes while within bounds) or as an SLO judged on the experiment's
// windows (the query is sampled on an interval; a window's value is its worst
// sample).
import type { Recorder } from './recorder.js';
import { promqlGauge, type Slos } from './slo.js';

export interface PromqlQuery {
  /** Base URL of the Prometheus HTTP API, e.g. "http://127.0.0.1:9090". */
  url: string;
  /** An instant query; its value must be a scalar or a vector of one or more samples. */
  query: string;
}

/**
 * Runs an instant query and returns its values (one per series, a scalar as one).
 * An empty vector is `[]`: nothing to judge, which callers decide about.
 */
export async function queryPromql(q: PromqlQuery, signal?: AbortSignal): Promise<number[]> {
  const url = new URL('/api/v1/query', q.url);
  url.searchParams.set('query', q.query);
  const r = await fetch(url, { signal });
  const body = (await r.json().catch(() => null)) as {
    status?: string;
    error?: string;
    data?: { resultType: string; result: unknown };
  } | null;
  if (!r.ok || body?.status !== 'success' || !body.data) {
    throw new Error(`PromQL ${JSON.stringify(q.query)} at ${q.url}: ${body?.error ?? `HTTP ${r.status}`}`);
  }
  const { resultType, result } = body.data;
  if (resultType === 'scalar') return [Number((result as [number, string])[1])];
  if (resultType === 'vector') return (result as { value: [number, string] }[]).map((s) => Number(s.value[1]));
  throw new Error(`PromQL ${JSON.stringify(q.query)}: a ${resultType} result; expected a scalar or an instant vector`);
}

/** "within bounds" for probes and SLOs alike: every value in [min, max]. */
export function outOfBounds(values: number[], min?: number, max?: number): string | null {
  for (const v of values) {
    if (Number.isNaN(v)) return 'NaN';
    if (max !== undefined && v > max) return `${v} > max ${max}`;
    if (min !== undefined && v < min) return `${v} < min ${min}`;
  }
  return null;
}

/**
 * Samples every PromQL SLO of `slos` into the recorder until the returned stop()
 * is called. A failed query is recorded as a failed sample (NaN), so an
 * unreachable Prometheus breaches instead of passing silently.
 */
export function startPromqlSlos(slos: Slos, rec: Recorder): () => Promise<void> {
  const specs = slos.promql ?? [];
  let stopped = false;
  const running = new Set<Promise<void>>();
  const timers = specs.map((s) => {
    const run = () => {
      if (stopped) return;
      const task = queryPromql(s, AbortSignal.timeout(Math.max(200, s.intervalMs ?? 250) * 4))
        .then((values) => {
          for (const v of values) rec.recordGauge(promqlGauge(s.name), v);
        })
        .catch(() => rec.recordGauge(promqlGauge(s.name), Number.NaN))
        .finally(() => running.delete(task));
      running.add(task);
    };
    run();
    return setInterval(run, s.intervalMs ?? 250);
  });
  return async () => {
    stopped = true;
    timers.forEach(clearInterval);
    await Promise.allSettled([...running]);
  };
}
