// What the experiments read from a result and from the order flow's outcomes, in
// wall-clock time (the order flow stamps Date.now(); a result counts ms from startedAt).
import type { ExperimentResult, Phase } from 'vitest-chaos';
import type { Outcome } from './order-flow.js';

/** Wall-clock time (Date.now() scale) of an experiment-relative offset. */
export const wall = (result: ExperimentResult, ms: number) => Date.parse(result.startedAt) + ms;

/**
 * When fault i of the result was in force, in wall-clock ms: `applying` when its inject began
 * (a kill is sent then; process-kill's inject then waits for the process to be gone), `from`
 * when the inject returned, `to` when its revert returned.
 */
export function faultWindow(result: ExperimentResult, i = 0): { applying: number; from: number; to: number } {
  const f = result.faults[i];
  if (!f || f.injectedAtMs === null) throw new Error(`fault ${i} of "${result.name}" was never injected: ${f?.error ?? 'no such fault'}`);
  return {
    applying: wall(result, f.injectedAtMs - (f.applyMs ?? 0)),
    from: wall(result, f.injectedAtMs),
    to: wall(result, f.revertedAtMs ?? result.durationMs),
  };
}

export interface OutcomeSummary {
  n: number;
  failed: number;
  errorRate: number;
  p50Ms: number;
  p99Ms: number;
  /** Failures by the API's or the client's error. */
  errors: Record<string, number>;
  /** Successful quotes and orders by where their quote came from. */
  sources: Record<string, number>;
}

export function summarize(list: Outcome[]): OutcomeSummary {
  const ms = list.map((o) => o.ms).sort((a, b) => a - b);
  const pct = (p: number) => (ms.length ? (ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] as number) : 0);
  const count = (keys: (string | undefined)[]) =>
    keys.reduce<Record<string, number>>((acc, k) => {
      if (k !== undefined) acc[k] = (acc[k] ?? 0) + 1;
      return acc;
    }, {});
  const failed = list.filter((o) => !o.ok);
  return {
    n: list.length,
    failed: failed.length,
    errorRate: list.length ? failed.length / list.length : 0,
    p50Ms: Math.round(pct(0.5) * 10) / 10,
    p99Ms: Math.round(pct(0.99) * 10) / 10,
    errors: count(failed.map((o) => o.error ?? `status ${o.status}`)),
    sources: count(list.filter((o) => o.ok).map((o) => o.source)),
  };
}

/** One line per fact, printed under the test (the verbose reporter shows a test's output). */
export function report(title: string, facts: Record<string, unknown>): void {
  const lines = Object.entries(facts).map(([k, v]) => `  ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  console.log(`[finding] ${title}\n${lines.join('\n')}`);
}

/**
 * The kernel's observations of one target in one phase (`result.kernel[phase][name]`), or
 * undefined while the result has none (the eBPF observers of issue 9, item 5): the
 * experiments assert them where they exist.
 */
export interface KernelObservation {
  tcpRetransmits: number;
  connectAttempts: number;
  connectErrors: Record<string, number>;
  runqueueDelayP99Us: number;
  blockIoLatencyP99Us: number;
  blockIoBytes: number;
  oomKills: { comm: string; pid: number }[];
  processExits: { comm: string; pid: number; signal: number | string }[];
}

export function kernelOf(result: ExperimentResult, phase: Phase, name: string): KernelObservation | undefined {
  const k = (result as { kernel?: Partial<Record<Phase, Record<string, KernelObservation>>> }).kernel;
  return k?.[phase]?.[name];
}
