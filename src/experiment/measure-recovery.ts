// The recovery phase: the first window after the last revert in which every
// SLO holds again. It keeps measuring past withinMs, so a slow recovery is
// reported with its real length.
import { evaluate, type Slos } from '../steady-state/slo.js';
import type { WindowStats } from '../steady-state/recorder.js';
import type { Breach, TimelinePoint } from './result.js';
import { timelinePoint } from './watch-observe.js';
import type { WindowClock } from './window-clock.js';

/** Last revert -> start of the first window that holds every SLO; null if none did within the wait. */
export async function measureRecovery(
  clock: WindowClock,
  o: { slos: Slos; recovery?: { withinMs: number; maxWaitMs?: number } },
  baseline: WindowStats | null,
  lastRevertMs: number,
  breaches: Breach[],
  timeline: TimelinePoint[],
  log: (line: string) => void,
): Promise<number | null> {
  const { rec, bucketMs, windowMs, signal } = clock;
  const waitMs = (o.recovery?.maxWaitMs ?? Math.max(10_000, 2 * (o.recovery?.withinMs ?? 0))) + windowMs;
  let candidate = Math.ceil(lastRevertMs / bucketMs) * bucketMs;
  let recoveryMs: number | null = null;
  log(`recovery: up to ${waitMs} ms`);
  while (!signal.aborted && recoveryMs === null && candidate - lastRevertMs <= waitMs - windowMs) {
    if (candidate + windowMs > rec.now()) {
      await clock.nextTick();
      continue;
    }
    const w = rec.window(candidate + windowMs, windowMs);
    const failed = evaluate(o.slos, w, baseline).filter((c) => !c.ok);
    timeline.push(timelinePoint(w, failed.length > 0, 'recovery'));
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
  return recoveryMs;
}
