// cpu-throttle: the target gets at most `cpus` CPUs of time, through the CFS
// quota of its cgroup's cpu controller (cgroup v1: cpu.cfs_quota_us per
// cpu.cfs_period_us; v2: cpu.max). A quota the container already had is kept
// when it is tighter; the old value is journaled before the new one is written.
import { z } from 'zod';
import type { FaultKind } from '../fault-kind.js';
import { limitFault, tightenLimits } from '../../targets/cgroup-limits.js';
import { cpuControlOf } from '../../targets/cpu-control.js';

const CPUS = 'a number of CPUs from 0.01 to 1024 (e.g. 0.2)';

const schema = z.strictObject({
  /** CPUs of time the target may use, 0.01-1024 (0.2 = 20 ms of every 100 ms). Required. */
  cpus: z.number({ error: CPUS }).min(0.01, { error: CPUS }).max(1024, { error: CPUS }),
});

export type CpuThrottleParams = z.input<typeof schema>;

export interface CpuThrottleStats {
  /** The quota in force, per `periodUs`. */
  quotaUs: number;
  periodUs: number;
  /** CFS periods since the fault started, and of those, the ones the target was throttled in. */
  periods: number;
  throttledPeriods: number;
  /** Time the target spent throttled, in ms. */
  throttledMs: number;
}

// The kernel refuses quotas under 1 ms.
const MIN_QUOTA_US = 1000n;

export const cpuThrottle: FaultKind<'cpu-throttle', typeof schema, CpuThrottleStats> = {
  kind: 'cpu-throttle',
  matched: () => 1,
  matchedWhat: "the target's cgroup (always reached)",
  schema,
  async apply(p, target, ctx) {
    const cpu = cpuControlOf('cpu-throttle', target);
    let quota = BigInt(Math.round(p.cpus * cpu.periodUs));
    if (quota < MIN_QUOTA_US) quota = MIN_QUOTA_US;
    const before = cpu.read();
    const held = tightenLimits(ctx, `cpu-throttle ${p.cpus} CPUs on ${target.name}`, [{ file: cpu.quota, value: quota }]);
    return limitFault(held, () => {
      const now = cpu.read();
      if (now === null) return null; // the container is gone
      return {
        quotaUs: now.quotaUs ?? -1,
        periodUs: cpu.periodUs,
        periods: now.periods - (before?.periods ?? 0),
        throttledPeriods: now.throttledPeriods - (before?.throttledPeriods ?? 0),
        throttledMs: now.throttledMs - (before?.throttledMs ?? 0),
      };
    });
  },
};
