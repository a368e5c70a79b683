// The verdict and the plain, JSON-serialisable result from what the phases measured.
import type { LoadTotals } from '../steady-state/load-generator.js';
import type { Recorder, WindowStats } from '../steady-state/recorder.js';
import type { Slos } from '../steady-state/slo.js';
import type { KernelPhases } from './kernel-watch.js';
import type { Breach, ExperimentResult, FaultRecord, Severity, TimelinePoint } from './result.js';

export interface Measured {
  name: string;
  hypothesis: string;
  severity: Severity;
  seed: number;
  startedAt: Date;
  windowMs: number;
  slos: Slos;
  rec: Recorder;
  baseline: WindowStats | null;
  breaches: Breach[];
  timeline: TimelinePoint[];
  faults: FaultRecord[];
  load: LoadTotals | null;
  /** Aborted on a breach. */
  aborted: boolean;
  rollbackMs: number | null;
  recoveryMs: number | null;
  /** A failed inject or revert, or a cancelled test. */
  error?: string;
  /** What the kernel saw of the targets, by phase. */
  kernel?: KernelPhases;
  kernelError?: string;
}

/** "network-partition(peer=db) on app": a fault as the verdict's reason names it. */
export function faultLabel(f: FaultRecord, index: number): string {
  const params = Object.entries(f.params)
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
  return `fault ${index} ${f.kind}(${params}) on ${(f.targets ?? [f.target]).join(', ')}`;
}

/** The applied faults that matched nothing (no packet, no connection, ...), as reasons. */
export function unmatchedFaults(faults: readonly FaultRecord[]): string[] {
  return faults.flatMap((f, i) =>
    f.matched === 0 && f.injectedAtMs !== null && !f.dryRun && !f.error
      ? [`${faultLabel(f, i)} matched nothing: 0 ${f.matchedWhat ?? 'things it counts'} while in force`]
      : [],
  );
}

export function buildResult(m: Measured): ExperimentResult {
  const unmatched = unmatchedFaults(m.faults);
  const verdict = m.error || m.aborted ? 'aborted' : m.breaches.length ? 'rejected' : unmatched.length ? 'inconclusive' : 'validated';
  const first = m.breaches[0];
  const reason = m.error
    ? m.error
    : first
      ? `${first.slo} ${first.actual === null ? 'never recovered' : first.actual.toFixed(2)} against ${first.stated} (${first.phase})`
      : unmatched.length
        ? `every SLO held, but nothing was tested: ${unmatched.join('; ')}`
        : 'every SLO held in every window';
  return {
    name: m.name,
    hypothesis: m.hypothesis,
    severity: m.severity,
    verdict,
    reason,
    seed: m.seed,
    startedAt: m.startedAt.toISOString(),
    durationMs: m.rec.now(),
    windowMs: m.windowMs,
    slos: m.slos,
    phases: { baseline: m.baseline, observe: m.rec.phaseStats('observe'), recovery: m.rec.phaseStats('recovery') },
    breaches: m.breaches,
    rollbackMs: m.rollbackMs,
    recoveryMs: m.recoveryMs,
    recovered: m.recoveryMs !== null,
    faults: m.faults,
    load: m.load,
    timeline: m.timeline,
    ...(m.kernel ? { kernel: m.kernel } : {}),
    ...(m.kernelError ? { kernelError: m.kernelError } : {}),
    ...(m.error ? { error: m.error } : {}),
  };
}
