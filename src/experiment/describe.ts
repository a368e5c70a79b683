// A result in words: a breach reads like a finding (the SLO, actual against
// threshold, the window, the faults in force), an experiment as one line.
import { formatValue } from '../steady-state/slo.js';
import type { Breach, ExperimentResult } from './result.js';

const sec = (ms: number) => (ms / 1000).toFixed(2);

export function describeBreach(b: Breach): string {
  const actual = b.actual === null ? 'never' : formatValue(b.actual, b.unit);
  const threshold = formatValue(b.threshold, b.unit);
  const cmp =
    b.slo === 'availability' || b.slo === 'throughput' || (b.slo === 'promql' && b.stated.endsWith(` min ${b.threshold}`)) ? '<' : '>';
  const faults = b.activeFaults.length ? `; faults in force: ${b.activeFaults.join(', ')}` : '';
  const what =
    b.slo === 'recovery'
      ? `recovery ${actual} ${b.actual === null ? '' : `${cmp} `}${b.actual === null ? `within ${threshold}` : threshold}`
      : `${b.slo} ${actual} ${cmp} ${threshold}`;
  return `${what} (${b.stated}) in window ${sec(b.window.startMs)}-${sec(b.window.endMs)} s (${b.phase})${faults}`;
}

export function summarize(r: ExperimentResult): string {
  const o = r.phases.observe;
  const parts = [`${r.name}: ${r.verdict}`];
  if (r.breaches[0]) parts.push(describeBreach(r.breaches[0]));
  if (r.verdict === 'inconclusive') parts.push(r.reason);
  if (o) parts.push(`observe p99 ${o.p99Ms?.toFixed(1) ?? '-'} ms, errors ${((o.errorRate ?? 0) * 100).toFixed(2)}%`);
  if (r.rollbackMs !== null) parts.push(`rollback ${r.rollbackMs.toFixed(1)} ms`);
  parts.push(r.recoveryMs !== null ? `recovered in ${r.recoveryMs.toFixed(0)} ms` : 'not recovered');
  parts.push(`seed ${r.seed}`);
  return parts.join(' | ');
}
