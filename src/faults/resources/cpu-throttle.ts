// cpu-throttle: the target gets at most `cpus` CPUs of time, through the CFS
// quota of its cgroup v1 cpu controller (cpu.cfs_quota_us per
// cpu.cfs_period_us). A quota the container already had is kept when it is
// tighter; the old value is journaled before the new one is written.
import { join } from 'node:path';
import { z } from 'zod';
import { parseFlatKeyed, readCgroupFile } from '../../targets/cgroup-v1.js';
import type { FaultKind } from '../fault-kind.js';
import { limitFault, tightenLimits, v1DirOf, valueFile } from '../../targets/cgroup-limits.js';

const CPUS = 'a number of CPUs from 0.01 to 1024 (e.g. 0.2)';

const schema = z.strictObject({
  /** CPUs of time the target may use, 0.01-1024 (0.2 = 20 ms of every 100 ms). Required. */
  cpus: z.number({ error: CPUS }).min(0.01, { error: CPUS }).max(1024, { error: CPUS }),
});

export type CpuThrottleParams = z.input<typeof schema>;

export interface CpuThrottleStats {
  /** The quota in force (cpu.cfs_quota_us), per `periodUs`. */
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
  schema,
  async apply(p, target, ctx) {
    const dir = v1DirOf('cpu-throttle', target, 'cpu');
    const period = BigInt(readCgroupFile(dir, 'cpu.cfs_period_us') ?? '100000');
    let quota = BigInt(Math.round(p.cpus * Number(period)));
    if (quota < MIN_QUOTA_US) quota = MIN_QUOTA_US;
    // "-1" is how the kernel shows and takes "no quota"; `docker update --cpus 0` does not clear one.
    const file = valueFile(join(dir, 'cpu.cfs_quota_us'), '-1');
    const before = parseFlatKeyed(readCgroupFile(dir, 'cpu.stat'));
    const held = tightenLimits(ctx, `cpu-throttle ${p.cpus} CPUs on ${target.name}`, [{ file, value: quota }]);
    return limitFault(held, () => {
      const now = readCgroupFile(dir, 'cpu.stat');
      const quotaNow = readCgroupFile(dir, 'cpu.cfs_quota_us');
      if (now === null || quotaNow === null) return null; // the container is gone
      const s = parseFlatKeyed(now);
      return {
        quotaUs: Number(quotaNow),
        periodUs: Number(period),
        periods: (s.nr_periods ?? 0) - (before.nr_periods ?? 0),
        throttledPeriods: (s.nr_throttled ?? 0) - (before.nr_throttled ?? 0),
        throttledMs: ((s.throttled_time ?? 0) - (before.throttled_time ?? 0)) / 1e6,
      };
    });
  },
};
