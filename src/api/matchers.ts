// expect(result).toHoldSteadyState() and expect(result).toRecoverWithin(ms):
// a failure reads like a finding: the hypothesis, the breached SLO, threshold
// against actual, the window, the faults in force.
import type { Breach, ExperimentResult } from '../experiment/result.js';
import { formatValue } from '../steady-state/slo.js';

function isResult(v: unknown): v is ExperimentResult {
  return !!v && typeof v === 'object' && 'verdict' in v && 'breaches' in v && 'hypothesis' in v;
}

const sec = (ms: number) => (ms / 1000).toFixed(2);

export function describeBreach(b: Breach): string {
  const actual = b.actual === null ? 'never' : formatValue(b.actual, b.unit);
  const threshold = formatValue(b.threshold, b.unit);
  const cmp = b.slo === 'availability' || b.slo === 'throughput' ? '<' : '>';
  const faults = b.activeFaults.length ? `; faults in force: ${b.activeFaults.join(', ')}` : '';
  const what = b.slo === 'recovery' ? `recovery ${actual} ${b.actual === null ? '' : `${cmp} `}${b.actual === null ? `within ${threshold}` : threshold}` : `${b.slo} ${actual} ${cmp} ${threshold}`;
  return `${what} (${b.stated}) in window ${sec(b.window.startMs)}-${sec(b.window.endMs)} s (${b.phase})${faults}`;
}

export function summarize(r: ExperimentResult): string {
  const o = r.phases.observe;
  const parts = [`${r.name}: ${r.verdict}`];
  if (r.breaches[0]) parts.push(describeBreach(r.breaches[0]));
  if (o) parts.push(`observe p99 ${o.p99Ms?.toFixed(1) ?? '-'} ms, errors ${((o.errorRate ?? 0) * 100).toFixed(2)}%`);
  if (r.rollbackMs !== null) parts.push(`rollback ${r.rollbackMs.toFixed(1)} ms`);
  parts.push(r.recoveryMs !== null ? `recovered in ${r.recoveryMs.toFixed(0)} ms` : 'not recovered');
  parts.push(`seed ${r.seed}`);
  return parts.join(' | ');
}

export const chaosMatchers = {
  toHoldSteadyState(received: unknown) {
    if (!isResult(received)) return { pass: false, message: () => 'expected the result of chaos.experiment()' };
    const pass = received.verdict === 'validated';
    return {
      pass,
      message: () =>
        pass
          ? `expected hypothesis "${received.hypothesis}" to be rejected, but every SLO held`
          : [
              `Hypothesis "${received.hypothesis}" was ${received.verdict}${received.verdict === 'aborted' && received.rollbackMs !== null ? ` (faults reverted ${received.rollbackMs.toFixed(1)} ms after the breach)` : ''}:`,
              ...(received.error ? [`  ${received.error}`] : []),
              ...received.breaches.slice(0, 5).map((b) => `  ${describeBreach(b)}`),
              ...(received.breaches.length > 5 ? [`  ... and ${received.breaches.length - 5} more breached windows`] : []),
              `  seed ${received.seed}`,
            ].join('\n'),
    };
  },
  toRecoverWithin(received: unknown, ms: number) {
    if (!isResult(received)) return { pass: false, message: () => 'expected the result of chaos.experiment()' };
    const pass = received.recoveryMs !== null && received.recoveryMs <= ms;
    return {
      pass,
      message: () =>
        pass
          ? `expected "${received.name}" not to recover within ${ms} ms, but it recovered in ${received.recoveryMs?.toFixed(0)} ms`
          : received.recoveryMs === null
            ? `expected "${received.name}" to recover within ${ms} ms, but the SLOs never held again after the faults were reverted`
            : `expected "${received.name}" to recover within ${ms} ms, but it took ${received.recoveryMs.toFixed(0)} ms`,
    };
  },
};

interface ChaosMatchers<R = unknown> {
  /** Passes when the experiment's verdict is 'validated'; the failure names the breached SLO. */
  toHoldSteadyState(): R;
  /** Passes when the SLOs held again within `ms` of the last fault's revert. */
  toRecoverWithin(ms: number): R;
}

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface Matchers<T = any> extends ChaosMatchers<T> {}
}
