// Which kernel observations of an experiment changed most against its baseline:
// counters compared as rates (the phases last different times), p99s as
// ratios, OOM kills and signalled exits as events (none is normal). Plain data
// for the reporter's table and HTML page.
import type { KernelObservation } from './kernel-observer.js';

export type ObservedPhase = 'baseline' | 'observe' | 'recovery';
export type KernelByPhase = Partial<Record<ObservedPhase, Record<string, KernelObservation>>>;

export interface KernelChange {
  target: string;
  phase: 'observe' | 'recovery';
  metric: string;
  /** The baseline's value and the phase's, as shown (a count, µs, bytes). */
  baseline: number | null;
  value: number | null;
  /** How much it changed: |log2| of the ratio of rates per second (bytes in MiB) or of p99s in ms, +1 smoothed. */
  score: number;
  /** "db tcpRetransmits 0 in 2.0 s -> 413 in 5.0 s (observe)". */
  text: string;
}

const COUNTERS = ['tcpRetransmits', 'connectAttempts', 'blockIoBytes'] as const;
const P99S = ['runqueueDelayP99Us', 'blockIoLatencyP99Us', 'tcpRttP99Us'] as const;

const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function connectErrorCount(o: KernelObservation): number {
  return Object.values(o.connectErrors).reduce((a, b) => a + b, 0);
}

function signalled(o: KernelObservation): KernelObservation['processExits'] {
  return o.processExits.filter((e) => e.signal !== null);
}

/** Every change of every target in the observe and recovery phases, largest first; `limit` of them. */
export function kernelChanges(kernel: KernelByPhase | undefined, limit = 5): KernelChange[] {
  const base = kernel?.baseline;
  if (!kernel || !base) return [];
  const out: KernelChange[] = [];
  for (const phase of ['observe', 'recovery'] as const) {
    for (const [target, o] of Object.entries(kernel[phase] ?? {})) {
      const b = base[target];
      if (!b) continue;
      const rate = (v: number, d: number) => v / Math.max(d, 1);
      const push = (metric: string, bv: number | null, v: number | null, score: number, text: string) =>
        out.push({ target, phase, metric, baseline: bv, value: v, score, text: `${target} ${text} (${phase})` });
      for (const m of COUNTERS) {
        // Per second, +1 smoothed; bytes in MiB, so a few hundred KiB of logs do not outrank a
        // retransmit storm.
        const unit = m === 'blockIoBytes' ? 1 << 20 : 1;
        const perSec = (v: number, d: number) => (rate(v, d) * 1000) / unit + 1;
        const score = Math.abs(Math.log2(perSec(o[m], o.durationMs) / perSec(b[m], b.durationMs)));
        push(m, b[m], o[m], score, `${m} ${b[m]} in ${sec(b.durationMs)} -> ${o[m]} in ${sec(o.durationMs)}`);
      }
      const be = connectErrorCount(b);
      const oe = connectErrorCount(o);
      const names = Object.entries(o.connectErrors)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      push(
        'connectErrors',
        be,
        oe,
        Math.abs(Math.log2((rate(oe, o.durationMs) * 1000 + 1) / (rate(be, b.durationMs) * 1000 + 1))),
        `connectErrors ${be} in ${sec(b.durationMs)} -> ${oe} in ${sec(o.durationMs)}${names ? ` (${names})` : ''}`,
      );
      for (const m of P99S) {
        const bv = b[m];
        const v = o[m];
        if (v === null) continue;
        // In ms, +1 smoothed: a p99 of 1 -> 2 ms is noise, 1 -> 200 ms is not. A baseline without
        // samples is no yardstick: at most the threshold, shown only when nothing else changed.
        const ratio = Math.abs(Math.log2((v / 1000 + 1) / ((bv ?? 0) / 1000 + 1)));
        push(m, bv, v, bv === null ? Math.min(ratio, 1) : ratio, `${m} ${bv ?? '-'} -> ${v} us`);
      }
      // An OOM kill or a signalled exit is news whatever the baseline did: weighted as a 16x change each.
      if (o.oomKills.length) {
        push(
          'oomKills',
          b.oomKills.length,
          o.oomKills.length,
          4 * o.oomKills.length,
          `oomKills ${o.oomKills.map((k) => `${k.comm}(${k.pid})`).join(', ')}`,
        );
      }
      const sig = signalled(o);
      if (sig.length) {
        push(
          'processExits',
          signalled(b).length,
          sig.length,
          4 * Math.min(sig.length, 4),
          `processExits ${sig
            .slice(0, 4)
            .map((e) => `${e.comm}(${e.pid}) ${e.signal}`)
            .join(', ')}${sig.length > 4 ? ` and ${sig.length - 4} more` : ''}`,
        );
      }
    }
  }
  return out
    .filter((c) => c.score >= 1)
    .sort((x, y) => y.score - x.score)
    .slice(0, limit);
}
