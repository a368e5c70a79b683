// expect(result).toHoldSteadyState() and expect(result).toRecoverWithin(ms):
// a failure reads like a finding: the hypothesis, the breached SLO, threshold
// against actual, the window, the faults in force.
import type { ExperimentResult } from '../experiment/result.js';
import { describeBreach } from '../experiment/describe.js';

function isResult(v: unknown): v is ExperimentResult {
  return !!v && typeof v === 'object' && 'verdict' in v && 'breaches' in v && 'hypothesis' in v;
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
              ...(received.verdict === 'inconclusive' ? [`  ${received.reason}`] : []),
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
  /**
   * Passes when the experiment's verdict is 'validated'; the failure names the
   * breached SLO, or for 'inconclusive' the fault that matched nothing.
   */
  toHoldSteadyState(): R;
  /** Passes when the SLOs held again within `ms` of the last fault's revert. */
  toRecoverWithin(ms: number): R;
}

declare module 'vitest' {
  // biome-ignore lint/suspicious/noExplicitAny: Vitest declares Matchers<T = any>; a merged declaration must match it
  interface Matchers<T = any> extends ChaosMatchers<T> {}
}

export { describeBreach, summarize } from '../experiment/describe.js';
