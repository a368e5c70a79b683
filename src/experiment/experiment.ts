// baseline -> inject -> observe (SLO watch, abort on breach) -> revert -> recovery.
// Every fault is reverted on every way out: the end, a breach, a thrown error,
// a timed-out or cancelled test.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ActiveFault } from '../faults/fault-handle.js';
import { ChaosSpecError, problemsFromZod } from '../contracts/errors.js';
import { deriveSeed } from '../contracts/seed.js';
import { LoadGenerator, type LoadOptions } from '../steady-state/load-generator.js';
import { startProbes, type ProbeSpec } from '../steady-state/probes.js';
import { startPromqlSlos } from '../steady-state/promql.js';
import { Recorder, type WindowStats } from '../steady-state/recorder.js';
import { evaluate, type Slos } from '../steady-state/slo.js';
import { experimentSchema } from './options.js';
import type { Breach, ExperimentResult, FaultRecord, Phase, Severity, TimelinePoint } from './result.js';

export interface ExperimentStep<S> {
  /** Offset from the start of the observe phase (parallel) or from the previous step's end (serial). Default 0. */
  atMs?: number;
  /** Reverted after this long; default: until the observe phase ends. */
  durationMs?: number;
  fault: S;
}

export interface ExperimentOptions<S> {
  name: string;
  /** The sentence under test: "Given normal traffic, when the backend is 200 ms slower, p99 stays under 500 ms". */
  hypothesis: string;
  steadyState: {
    load?: LoadOptions;
    probes?: ProbeSpec[];
    slos: Slos;
    /** Sliding window the SLOs are judged over. Default 1000 ms. */
    windowMs?: number;
  };
  /** Steady traffic before any fault; relative SLOs compare with it. Default 2000 ms. */
  baselineMs?: number;
  faults: (S | ExperimentStep<S>)[];
  /** 'parallel' (default): steps at their offsets; 'serial': one after the other. */
  schedule?: 'parallel' | 'serial';
  /** Length of the observe phase, from the first inject. */
  durationMs: number;
  /**
   * withinMs: the SLOs must hold again within this long after the last revert.
   * maxWaitMs: how long to keep measuring recovery (default max(10 s, 2 x withinMs)).
   */
  recovery?: { withinMs: number; maxWaitMs?: number };
  /** Revert every fault at the first breach. Default true. */
  abortOnBreach?: boolean;
  /** Seed of every random choice (fault draws, arrivals). Default: derived from the run's seed. */
  seed?: number;
  /** How much it matters that this hypothesis holds; weights the run's resilience score. Default 'medium'. */
  severity?: Severity;
}

export interface Injector<S> {
  validate(spec: S): unknown;
  inject(spec: S): Promise<ActiveFault<object>>;
}

interface Env<S> {
  injector: Injector<S>;
  seed: number;
  /** Aborted when the test times out or the run is cancelled. */
  signal?: AbortSignal;
  /** Called with the progress line of each phase. */
  progress?: (line: string) => void;
}

/** Validates everything, throws ChaosSpecError before anything starts. */
export function validateExperiment<S>(opts: ExperimentOptions<S>, injector: Injector<S>): void {
  const parsed = experimentSchema.safeParse(opts, { reportInput: true });
  if (!parsed.success) throw new ChaosSpecError(`chaos.experiment(${opts?.name ?? '?'})`, problemsFromZod(parsed.error, opts));
  for (const step of opts.faults) injector.validate(isStep(step) ? step.fault : step);
}

function isStep<S>(s: S | ExperimentStep<S>): s is ExperimentStep<S> {
  return !!s && typeof s === 'object' && 'fault' in (s as object);
}

export async function runExperiment<S extends { seed?: number }>(opts: ExperimentOptions<S>, env: Env<S>): Promise<ExperimentResult> {
  validateExperiment(opts, env.injector);
  const o = experimentSchema.parse(opts);
  const seed = opts.seed ?? env.seed;
  const windowMs = o.steadyState.windowMs;
  const bucketMs = Math.max(10, Math.min(100, Math.round(windowMs / 10)));
  const rec = new Recorder(bucketMs, windowMs * 2);
  const log = env.progress ?? (() => {});
  const steps = opts.faults.map((s, i) => {
    const step: ExperimentStep<S> = isStep(s) ? s : { fault: s };
    const fault = { ...step.fault, seed: step.fault.seed ?? deriveSeed(seed, 'fault', i) };
    return { ...step, fault };
  });
  const records: FaultRecord[] = steps.map((s) => ({
    kind: String((s.fault as { kind?: unknown }).kind),
    target: '',
    seed: s.fault.seed as number,
    params: {},
    injectedAtMs: null,
    revertedAtMs: null,
    applyMs: null,
    stats: {},
  }));
  const active = new Map<number, ActiveFault<object>>();
  const breaches: Breach[] = [];
  const timeline: TimelinePoint[] = [];
  const timers: NodeJS.Timeout[] = [];
  const abort = new AbortController();
  const onCancel = () => abort.abort();
  env.signal?.addEventListener('abort', onCancel);
  let phase: Phase = 'baseline';
  let baseline: WindowStats | null = null;
  let rollbackMs: number | null = null;
  let recoveryMs: number | null = null;
  let aborted = false;
  let error: string | undefined;
  let lastRevertMs = 0;
  const startedAt = new Date();

  const load = o.steadyState.load ? new LoadGenerator({ ...o.steadyState.load, seed: o.steadyState.load.seed ?? deriveSeed(seed, 'load') }, rec) : null;
  const stopProbes = startProbes(o.steadyState.probes ?? [], rec);
  const stopPromql = startPromqlSlos(o.steadyState.slos, rec);

  const activeNames = () => [...active.values()].map((f) => f.toString());
  const revertOne = async (i: number) => {
    const f = active.get(i);
    if (!f) return;
    active.delete(i);
    await f.revert();
    const r = records[i] as FaultRecord;
    r.revertedAtMs = rec.now();
    r.stats = f.stats() as Record<string, number>;
    lastRevertMs = Math.max(lastRevertMs, r.revertedAtMs);
  };
  const revertAll = async () => {
    timers.forEach(clearTimeout);
    await Promise.all([...active.keys()].map(revertOne));
  };
  const injectOne = async (i: number) => {
    if (abort.signal.aborted || phase !== 'observe') return;
    const step = steps[i]!;
    const r = records[i] as FaultRecord;
    try {
      const t0 = rec.now();
      const f = await env.injector.inject(step.fault);
      r.injectedAtMs = rec.now();
      r.applyMs = r.injectedAtMs - t0;
      r.target = f.target.name;
      r.params = { ...f.params };
      active.set(i, f);
      log(`injected ${f}`);
      if (step.durationMs !== undefined) timers.push(setTimeout(() => void revertOne(i), step.durationMs));
    } catch (err) {
      r.error = (err as Error).message;
      error ??= `inject of fault ${i} (${r.kind}) failed: ${r.error}`;
      abort.abort();
    }
  };
  /** Sleeps to just past the next bucket boundary, so a window is judged as soon as it closes. */
  const nextTick = () => sleep(bucketMs - (rec.now() % bucketMs) + 1, undefined, { signal: abort.signal }).catch(() => undefined);

  try {
    // --- baseline
    rec.setPhase('baseline');
    log(`baseline ${o.baselineMs} ms`);
    // Full windows of the baseline go on the timeline, so reports show the band it drew.
    while (!abort.signal.aborted && rec.now() < o.baselineMs) {
      await nextTick();
      const end = Math.floor(Math.min(rec.now(), o.baselineMs) / bucketMs) * bucketMs;
      if (end >= windowMs && timeline[timeline.length - 1]?.endMs !== end) timeline.push(point(rec.window(end, windowMs), 'baseline', false));
    }
    baseline = rec.phaseStats('baseline');
    const baseChecks = baseline ? evaluate(o.steadyState.slos, baseline, baseline).filter((c) => !c.ok) : [];
    for (const c of baseChecks) breaches.push({ ...c, phase: 'baseline', window: { startMs: 0, endMs: rec.now() }, activeFaults: [] });

    if (!abort.signal.aborted && baseChecks.length === 0) {
      // --- inject + observe
      phase = 'observe';
      rec.setPhase('observe');
      let observeStart = rec.now();
      log(`observe ${o.durationMs} ms`);
      if (o.schedule === 'serial') {
        let at = 0;
        steps.forEach((s, i) => {
          at += s.atMs ?? 0;
          const start = at;
          timers.push(setTimeout(() => void injectOne(i), start));
          at += s.durationMs ?? 0;
        });
      } else {
        const now = steps.map((s, i) => ((s.atMs ?? 0) === 0 ? i : -1)).filter((i) => i >= 0);
        await Promise.all(now.map(injectOne)); // the faults at offset 0 are in force before we watch
        // The observe phase is timed from the faults being in force: an apply that took longer
        // than durationMs (a loaded machine) would otherwise leave no window judged under the fault.
        observeStart = rec.now();
        steps.forEach((s, i) => {
          if ((s.atMs ?? 0) > 0) timers.push(setTimeout(() => void injectOne(i), s.atMs));
        });
      }
      let lastEnd = -1;
      while (!abort.signal.aborted && rec.now() - observeStart < o.durationMs) {
        await nextTick();
        const end = Math.floor(rec.now() / bucketMs) * bucketMs;
        if (end === lastEnd || end - windowMs < observeStart - windowMs / 2) continue;
        lastEnd = end;
        const w = rec.window(end, windowMs);
        const failed = evaluate(o.steadyState.slos, w, baseline).filter((c) => !c.ok);
        timeline.push(point(w, 'observe', failed.length > 0));
        if (failed.length === 0) continue;
        const faults = activeNames();
        for (const c of failed) if (breaches.length < 200) breaches.push({ ...c, phase: 'observe', window: { startMs: w.startMs, endMs: w.endMs }, activeFaults: faults });
        if (o.abortOnBreach) {
          await revertAll();
          rollbackMs = rec.now() - w.endMs;
          aborted = true;
          log(`breach: ${failed.map((c) => c.slo).join(', ')}; all faults reverted ${rollbackMs.toFixed(1)} ms after the window closed`);
          break;
        }
      }
      await revertAll();

      // --- recovery
      phase = 'recovery';
      rec.setPhase('recovery');
      // Keep measuring past withinMs, so a slow recovery is reported with its real length.
      const waitMs = (o.recovery?.maxWaitMs ?? Math.max(10_000, 2 * (o.recovery?.withinMs ?? 0))) + windowMs;
      let candidate = Math.ceil(lastRevertMs / bucketMs) * bucketMs;
      log(`recovery: up to ${waitMs} ms`);
      while (!abort.signal.aborted && recoveryMs === null && candidate - lastRevertMs <= waitMs - windowMs) {
        if (candidate + windowMs > rec.now()) {
          await nextTick();
          continue;
        }
        const w = rec.window(candidate + windowMs, windowMs);
        const failed = evaluate(o.steadyState.slos, w, baseline).filter((c) => !c.ok);
        timeline.push(point(w, 'recovery', failed.length > 0));
        if (failed.length === 0 && (w.requests > 0 || w.probes > 0)) recoveryMs = candidate - lastRevertMs;
        else candidate += bucketMs;
      }
      if (o.recovery && (recoveryMs === null || recoveryMs > o.recovery.withinMs)) {
        breaches.push({
          slo: 'recovery',
          threshold: o.recovery.withinMs,
          actual: recoveryMs,
          unit: 'ms',
          stated: `within ${o.recovery.withinMs} ms`,
          phase: 'recovery',
          window: { startMs: lastRevertMs, endMs: rec.now() },
          activeFaults: [],
        });
      }
    }
  } finally {
    // Every way out reverts and stops what it started.
    await revertAll().catch((err: Error) => {
      error ??= `revert failed: ${err.message}`;
    });
    await stopProbes();
    await stopPromql();
    env.signal?.removeEventListener('abort', onCancel);
  }
  const loadTotals = load ? await load.stop() : null;
  if (env.signal?.aborted) error ??= 'the test was cancelled or timed out';
  const verdict = error || aborted ? 'aborted' : breaches.length ? 'rejected' : 'validated';
  const first = breaches[0];
  const reason = error
    ? error
    : first
      ? `${first.slo} ${first.actual === null ? 'never recovered' : first.actual.toFixed(2)} against ${first.stated} (${first.phase})`
      : 'every SLO held in every window';
  return {
    name: o.name,
    hypothesis: o.hypothesis,
    severity: opts.severity ?? 'medium',
    verdict,
    reason,
    seed,
    startedAt: startedAt.toISOString(),
    durationMs: rec.now(),
    windowMs,
    slos: o.steadyState.slos,
    phases: { baseline, observe: rec.phaseStats('observe'), recovery: rec.phaseStats('recovery') },
    breaches,
    rollbackMs,
    recoveryMs,
    recovered: recoveryMs !== null,
    faults: records,
    load: loadTotals,
    timeline,
    ...(error ? { error } : {}),
  };
}

function point(w: WindowStats, phase: Phase, breached: boolean): TimelinePoint {
  return { endMs: w.endMs, phase, requests: w.requests, errorRate: w.errorRate, p50Ms: w.p50Ms, p99Ms: w.p99Ms, throughputRps: w.throughputRps, breached };
}
