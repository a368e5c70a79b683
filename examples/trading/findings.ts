// What the experiments read from a result and from the order flow's outcomes, in
// wall-clock time (the order flow stamps Date.now(); a result counts ms from startedAt).
import type { ExperimentResult, KernelObservation } from 'vitest-chaos';
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
  meanMs: number;
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
    meanMs: ms.length ? Math.round((ms.reduce((a, b) => a + b, 0) / ms.length) * 10) / 10 : 0,
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

/** The phases an experiment's kernel observations are kept for. */
export type KernelPhase = 'baseline' | 'observe' | 'recovery';

/**
 * What the kernel saw of one container in one phase of an experiment
 * (`result.kernel[phase][name]`: a fault's target, or a container of the option `observe`).
 * Throws, saying why, when the result has none: every experiment asserts its own.
 */
export function kernelOf(result: ExperimentResult, phase: KernelPhase, name: string): KernelObservation {
  const o = result.kernel?.[phase]?.[name];
  if (o) return o;
  const why =
    result.kernelError ??
    (result.kernel
      ? `it has phases [${Object.keys(result.kernel).join(', ')}], containers [${Object.keys(result.kernel[phase] ?? {}).join(', ')}]`
      : 'it has no kernel observations');
  throw new Error(`"${result.name}" has no kernel observation of ${name} in its ${phase} phase: ${why}`);
}

/** Failed connects of every errno. */
export const connectErrorCount = (o: KernelObservation) => Object.values(o.connectErrors).reduce((a, b) => a + b, 0);

/** A per-second rate of a counter over the observation's span. */
export const perSecond = (n: number, o: KernelObservation) => n / Math.max(o.durationMs / 1000, 0.001);

/** One line of the figures of an observation that the experiments are about. */
export function kernelLine(o: KernelObservation): string {
  const us = (v: number | null) => (v === null ? '-' : v >= 10_000 ? `${(v / 1000).toFixed(0)} ms` : `${v} us`);
  const errs = Object.entries(o.connectErrors).map(([k, v]) => `${k} ${v}`);
  const parts = [
    `${(o.durationMs / 1000).toFixed(1)} s`,
    `retransmits ${o.tcpRetransmits}`,
    `connects ${o.connectAttempts} (established ${o.connectsEstablished}${errs.length ? `, ${errs.join(', ')}` : ''})`,
    `runqueue p99 ${us(o.runqueueDelayP99Us)}, waited ${perSecond(o.runqueueDelayTotalMs, o).toFixed(1)} ms/s (${o.runqueueSamples} waits)`,
    `io wait p99 ${us(o.blockIoLatencyP99Us)} (${o.blockIoWaits} waits, ${(o.blockIoBytes / 1024).toFixed(0)} KiB)`,
    `rtt p99 ${us(o.tcpRttP99Us)}`,
  ];
  if (o.oomKills.length) parts.push(`oom kills ${o.oomKills.map((k) => `${k.comm}(${k.pid})`).join(', ')}`);
  const exits = o.processExits.map((e) => `${e.comm}(${e.pid}) ${e.signal ?? `exit ${e.exitCode}`}`);
  if (exits.length) parts.push(`exits ${exits.length > 6 ? `${exits.slice(0, 6).join(', ')} +${exits.length - 6}` : exits.join(', ')}`);
  if (o.eventsLost) parts.push(`events lost ${o.eventsLost}`);
  return parts.join('; ');
}

/** `{ "<name> <phase>": line }` for the report of an experiment, for these containers. */
export function kernelFacts(result: ExperimentResult, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (!result.kernel) return { kernel: `none: ${result.kernelError ?? '?'}` };
  for (const name of names) {
    for (const phase of ['baseline', 'observe', 'recovery'] as const) {
      const o = result.kernel[phase]?.[name];
      if (o) out[`kernel ${name.replace(/^trading-\d+-\d+-/, '')} ${phase}`] = kernelLine(o);
    }
  }
  return out;
}
