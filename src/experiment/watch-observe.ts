// The observe phase's judge: every closing window is held against the SLOs;
// a breach is recorded with the faults in force, and, with abortOnBreach,
// every fault is reverted at once.
import { evaluate, type Slos } from '../steady-state/slo.js';
import type { WindowStats } from '../steady-state/recorder.js';
import type { Breach, Phase, TimelinePoint } from './result.js';
import type { WindowClock } from './window-clock.js';

const MAX_BREACHES = 200;

export interface ObserveOutcome {
  /** Aborted on a breach. */
  aborted: boolean;
  /** Breach (end of the breaching window) -> every fault in force reverted. */
  rollbackMs: number | null;
}

export async function watchObserve(
  clock: WindowClock,
  /** When the observe phase's clock starts: once the faults at offset 0 are in force. */
  observeStart: number,
  o: { slos: Slos; durationMs: number; abortOnBreach: boolean },
  baseline: WindowStats | null,
  faults: { activeNames(): string[]; revertActive(): Promise<void> },
  out: { breaches: Breach[]; timeline: TimelinePoint[] },
  log: (line: string) => void,
  rollout?: { beforeTick(): Promise<void>; onWindow(w: WindowStats, breached: boolean): void },
): Promise<ObserveOutcome> {
  const { rec, bucketMs, windowMs, signal } = clock;
  let lastEnd = -1;
  while (!signal.aborted && rec.now() - observeStart < o.durationMs) {
    await rollout?.beforeTick();
    await clock.nextTick();
    const end = Math.floor(rec.now() / bucketMs) * bucketMs;
    if (end === lastEnd || end - windowMs < observeStart - windowMs / 2) continue;
    lastEnd = end;
    const w = rec.window(end, windowMs);
    const failed = evaluate(o.slos, w, baseline).filter((c) => !c.ok);
    out.timeline.push(timelinePoint(w, failed.length > 0));
    rollout?.onWindow(w, failed.length > 0);
    if (failed.length === 0) continue;
    const activeFaults = faults.activeNames();
    for (const c of failed) {
      if (out.breaches.length < MAX_BREACHES)
        out.breaches.push({ ...c, phase: 'observe', window: { startMs: w.startMs, endMs: w.endMs }, activeFaults });
    }
    if (o.abortOnBreach) {
      await faults.revertActive();
      const rollbackMs = rec.now() - w.endMs;
      log(`breach: ${failed.map((c) => c.slo).join(', ')}; all faults reverted ${rollbackMs.toFixed(1)} ms after the window closed`);
      return { aborted: true, rollbackMs };
    }
  }
  return { aborted: false, rollbackMs: null };
}

/** A window on the timeline the reports draw (baseline, observe and recovery alike). */
export function timelinePoint(w: WindowStats, breached: boolean, phase: Phase = 'observe'): TimelinePoint {
  return {
    endMs: w.endMs,
    phase,
    requests: w.requests,
    errorRate: w.errorRate,
    p50Ms: w.p50Ms,
    p99Ms: w.p99Ms,
    throughputRps: w.throughputRps,
    breached,
  };
}
