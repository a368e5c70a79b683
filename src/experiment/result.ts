// The plain, JSON-serialisable result of an experiment.
import type { LoadTotals } from '../steady-state/load-generator.js';
import type { WindowStats } from '../steady-state/recorder.js';
import type { SloCheck, SloName, Slos } from '../steady-state/slo.js';
import type { KernelObservation } from '../observe/kernel-observer.js';

/** 'dry-run': nothing was applied (dry run); the load and probes ran and the baseline was measured. */
/**
 * 'inconclusive': every SLO held, but a fault matched nothing (no packet, no
 * connection, ...): the experiment did not test what it says; `reason` names the fault.
 */
export type Verdict = 'validated' | 'rejected' | 'aborted' | 'inconclusive' | 'dry-run';
export type Phase = 'baseline' | 'observe' | 'recovery';
export type Severity = 'low' | 'medium' | 'high' | 'critical';

export interface Breach {
  slo: SloName | 'recovery';
  threshold: number;
  actual: number | null;
  unit: SloCheck['unit'];
  stated: string;
  phase: Phase;
  /** ms since the experiment started. */
  window: { startMs: number; endMs: number };
  /** The faults in force during the window, e.g. "network-latency(latencyMs=200) on api". */
  activeFaults: string[];
}

export interface FaultRecord {
  kind: string;
  /** The first target (the only one of a single-target fault). */
  target: string;
  /** Every target the fault was applied to (in dry run: chosen for). */
  targets?: string[];
  /** Nothing was applied. */
  dryRun?: boolean;
  seed: number;
  params: Record<string, unknown>;
  injectedAtMs: number | null;
  revertedAtMs: number | null;
  /** How long inject() took to put the fault in force. */
  applyMs: number | null;
  stats: Record<string, number>;
  /** How many things (packets, connections, ...) the fault reached, by its kind's measure; absent when not applied. */
  matched?: number;
  /** What `matched` counts, in words. */
  matchedWhat?: string;
  /** Why the inject failed. */
  error?: string;
  /** Why the revert failed: the fault may still be in force (the journal keeps its undo for the reaper). */
  revertError?: string;
}

/** One step of a gradual rollout. */
export interface RolloutStep {
  /** As given: a target count or 'all'. */
  step: number | 'all';
  /** Targets each fault was applied to during the step. */
  targets: string[][];
  startMs: number;
  endMs: number;
  /** SLO windows judged wholly within the step, and the windows that breached while it was in force. */
  windows: number;
  breachedWindows: number;
}

export interface RolloutResult {
  holdMs: number;
  steps: RolloutStep[];
  /** The last step applied (1-based) and its value. */
  reached: number;
  reachedStep: number | 'all';
  /** The step in force at the first breach, or null. */
  breachedAt: number | 'all' | null;
}

export interface TimelinePoint {
  endMs: number;
  phase: Phase;
  requests: number;
  errorRate: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  throughputRps: number;
  breached: boolean;
}

export interface ExperimentResult {
  name: string;
  hypothesis: string;
  severity: Severity;
  verdict: Verdict;
  /** One line: why the verdict. */
  reason: string;
  seed: number;
  startedAt: string;
  durationMs: number;
  windowMs: number;
  slos: Slos;
  phases: Record<Phase, WindowStats | null>;
  breaches: Breach[];
  /** Breach (end of the breaching window) -> last fault reverted, when aborted on a breach. */
  rollbackMs: number | null;
  /** Last fault reverted -> first window that holds every SLO; null if it never did. */
  recoveryMs: number | null;
  recovered: boolean;
  faults: FaultRecord[];
  load: LoadTotals | null;
  timeline: TimelinePoint[];
  /** A thrown error or a cancelled test, when the experiment did not finish normally. */
  error?: string;
  /** The gradual rollout, step by step, when the experiment had one. */
  rollout?: RolloutResult;
  /**
   * What the kernel saw of every target of the faults, per phase that ran and per target
   * (the container's name without the leading '/'): `kernel.observe.db.tcpRetransmits`.
   * Absent in a dry run and when the observers could not start (then `kernelError` says why).
   */
  kernel?: Partial<Record<Phase, Record<string, KernelObservation>>>;
  /** Why there are no kernel observations. */
  kernelError?: string;
}
