// baseline -> inject -> observe (SLO watch, abort on breach) -> revert -> recovery.
// Every fault is reverted on every way out: the end, a breach, a thrown error,
// a timed-out or cancelled test; an inject still in flight is reverted when it
// lands, before the recovery phase starts.
import { deriveSeed } from '../contracts/seed.js';
import { LoadGenerator } from '../steady-state/load-generator.js';
import { startProbes } from '../steady-state/probes.js';
import { startPromqlSlos } from '../steady-state/promql.js';
import { evaluate } from '../steady-state/slo.js';
import type { WindowStats } from '../steady-state/recorder.js';
import { buildResult } from './build-result.js';
import type { ExperimentEnv, ExperimentOptions } from './experiment-options.js';
import { FaultSchedule } from './fault-schedule.js';
import { measureRecovery } from './measure-recovery.js';
import { experimentSchema } from './options.js';
import type { Breach, ExperimentResult, TimelinePoint } from './result.js';
import { validateExperiment } from './validate-experiment.js';
import { timelinePoint, watchObserve } from './watch-observe.js';
import { Rollout } from './rollout.js';
import { WindowClock } from './window-clock.js';
import { KernelWatch } from './kernel-watch.js';

export async function runExperiment<S extends { seed?: number }>(
  opts: ExperimentOptions<S>,
  env: ExperimentEnv<S>,
): Promise<ExperimentResult> {
  validateExperiment(opts, env.injector);
  const o = experimentSchema.parse(opts);
  const seed = opts.seed ?? env.seed;
  const log = env.progress ?? (() => {});
  const stop = new AbortController();
  const onCancel = () => stop.abort();
  env.signal?.addEventListener('abort', onCancel);
  const clock = new WindowClock(o.steadyState.windowMs, stop.signal);
  const { rec } = clock;
  const faults = new FaultSchedule(opts.faults, seed, env.injector, rec, stop, log);
  const rollout = o.rollout
    ? new Rollout(
        o.rollout,
        (n) => faults.widen(n),
        () => rec.now(),
        log,
      )
    : undefined;
  faults.firstCount = rollout?.firstCount;
  const breaches: Breach[] = [];
  const timeline: TimelinePoint[] = [];
  const startedAt = new Date();
  let baseline: WindowStats | null = null;
  let observed = { aborted: false, rollbackMs: null as number | null };
  let recoveryMs: number | null = null;
  let kernelSeen: Awaited<ReturnType<KernelWatch['finish']>> = {};

  const loadOpts = o.steadyState.load;
  const load = loadOpts ? new LoadGenerator({ ...loadOpts, seed: loadOpts.seed ?? deriveSeed(seed, 'load') }, rec) : null;
  const stopProbes = startProbes(o.steadyState.probes ?? [], rec);
  const stopPromql = startPromqlSlos(o.steadyState.slos, rec);
  const kernelWatch = await KernelWatch.start(env.injector, faults.seededFaults(), opts.observe);
  if (kernelWatch.error) log(kernelWatch.error);
  try {
    await kernelWatch.phase('baseline');
    rec.setPhase('baseline');
    log(`baseline ${o.baselineMs} ms`);
    // Full windows of the baseline go on the timeline, so reports show the band it drew.
    while (!stop.signal.aborted && rec.now() < o.baselineMs) {
      await clock.nextTick();
      const end = Math.floor(Math.min(rec.now(), o.baselineMs) / clock.bucketMs) * clock.bucketMs;
      if (end >= clock.windowMs && timeline[timeline.length - 1]?.endMs !== end) {
        timeline.push(timelinePoint(rec.window(end, clock.windowMs), false, 'baseline'));
      }
    }
    baseline = rec.phaseStats('baseline');
    const baseChecks = baseline ? evaluate(o.steadyState.slos, baseline, baseline).filter((c) => !c.ok) : [];
    for (const c of baseChecks) breaches.push({ ...c, phase: 'baseline', window: { startMs: 0, endMs: rec.now() }, activeFaults: [] });

    if (!stop.signal.aborted && baseChecks.length === 0) {
      await kernelWatch.phase('observe');
      rec.setPhase('observe');
      log(`observe ${o.durationMs} ms`);
      await faults.start(o.schedule);
      // Timed from the faults being in force: an apply that took longer than durationMs
      // (a loaded machine) would otherwise leave no window judged under the fault.
      const observeStart = rec.now();
      observed = await watchObserve(
        clock,
        observeStart,
        { ...o, slos: o.steadyState.slos },
        baseline,
        faults,
        { breaches, timeline },
        log,
        rollout,
      );
      await faults.revertAll();

      await kernelWatch.phase('recovery');
      rec.setPhase('recovery');
      recoveryMs = await measureRecovery(clock, { ...o, slos: o.steadyState.slos }, baseline, faults.lastRevertMs, breaches, timeline, log);
    }
  } finally {
    // Every way out reverts and stops what it started.
    await faults.revertAll();
    await stopProbes();
    await stopPromql();
    kernelSeen = await kernelWatch.finish();
    env.signal?.removeEventListener('abort', onCancel);
  }
  const loadTotals = load ? await load.stop() : null;
  let error = faults.error;
  if (env.signal?.aborted) error ??= 'the test was cancelled or timed out';
  const result = buildResult({
    name: o.name,
    hypothesis: o.hypothesis,
    severity: opts.severity ?? 'medium',
    seed,
    startedAt,
    windowMs: o.steadyState.windowMs,
    slos: o.steadyState.slos,
    rec,
    baseline,
    breaches,
    timeline,
    faults: faults.records,
    load: loadTotals,
    ...observed,
    recoveryMs,
    ...kernelSeen,
    ...(error ? { error } : {}),
  });
  if (rollout) {
    result.rollout = rollout.result(faults.lastRevertMs || rec.now());
    const at = result.rollout.steps.findIndex((st) => st.breachedWindows > 0);
    if (at >= 0)
      result.reason += `; rollout stopped at step ${at + 1} of ${o.rollout!.steps.length} (${result.rollout.breachedAt} target(s))`;
  }
  return result;
}
