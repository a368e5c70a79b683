// Probes: small checks run on an interval whose pass rate is the availability.
import { redact } from '../contracts/redact.js';
import net from 'node:net';
import { outOfBounds, queryPromql, type PromqlQuery } from './promql.js';
import type { Recorder } from './recorder.js';

export type ProbeSpec = {
  /** Shown in breaches and reports. */
  name: string;
  /** Default 250 ms. */
  intervalMs?: number;
  /** Default 1000 ms. */
  timeoutMs?: number;
} & (
  | { http: { url: string; status?: number | number[]; body?: (text: string) => boolean } }
  | { tcp: { host: string; port: number } }
  | { fn: (signal: AbortSignal) => Promise<boolean | undefined> }
  /** Passes while every value of the query is within [min, max]; an empty result fails. */
  | { promql: PromqlQuery; min?: number; max?: number }
);

export async function runProbeOnce(p: ProbeSpec, signal: AbortSignal): Promise<void> {
  if ('http' in p) {
    const r = await fetch(p.http.url, { signal });
    const text = await r.text();
    const want = p.http.status ?? [200];
    const ok = Array.isArray(want) ? want.includes(r.status) : r.status === want;
    if (!ok) throw new Error(`status ${r.status}`);
    if (p.http.body && !p.http.body(text)) throw new Error('body check failed');
    return;
  }
  if ('tcp' in p) {
    await new Promise<void>((resolve, reject) => {
      const s = net.connect({ host: p.tcp.host, port: p.tcp.port });
      const done = (err?: Error) => {
        s.destroy();
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () => done(new Error('timeout'));
      signal.addEventListener('abort', onAbort);
      s.once('connect', () => done());
      s.once('error', (e) => done(e));
    });
    return;
  }
  if ('promql' in p) {
    const values = await queryPromql(p.promql, signal);
    if (values.length === 0) throw new Error(`no data for ${p.promql.query}`);
    const bad = outOfBounds(values, p.min, p.max);
    if (bad) throw new Error(bad);
    return;
  }
  if ((await p.fn(signal)) === false) throw new Error('returned false');
}

/** Runs every probe on its interval until the returned stop() is called. */
export function startProbes(probes: ProbeSpec[], recorder: Recorder): () => Promise<void> {
  let stopped = false;
  const running = new Set<Promise<void>>();
  const timers = probes.map((p) => {
    const run = () => {
      if (stopped) return;
      const signal = AbortSignal.timeout(p.timeoutMs ?? 1000);
      const task = runProbeOnce(p, signal)
        .then(() => recorder.recordProbe(true))
        .catch((err: Error) => recorder.recordProbe(false, redact(`${p.name}: ${signal.aborted ? 'timeout' : err.message}`)))
        .finally(() => running.delete(task));
      running.add(task);
    };
    run();
    return setInterval(run, p.intervalMs ?? 250);
  });
  return async () => {
    stopped = true;
    timers.forEach(clearInterval);
    await Promise.allSettled([...running]);
  };
}
