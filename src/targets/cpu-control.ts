// The CFS quota of a target's cgroup, whichever version holds its cpu
// controller. v1: cpu.cfs_quota_us ("-1" = none) per cpu.cfs_period_us, and
// cpu.stat's throttled_time in ns. v2: cpu.max "QUOTA PERIOD" ("max" = none),
// and cpu.stat's throttled_usec.
import { join } from 'node:path';
import { cgroupWriteUndo } from '../journal/journal.js';
import { controllerDirOf } from './cgroup-controller.js';
import { valueFile, type LimitFile } from './cgroup-limits.js';
import { parseFlatKeyed, readCgroupFile, writeCgroupFile } from './cgroup-v1.js';
import type { ResolvedTarget } from './resolve-target.js';

export interface CpuReading {
  /** The quota in force per period, in µs; null = no quota. */
  quotaUs: number | null;
  /** CFS periods the cgroup ran in, and those it hit the quota in, since it was made. */
  periods: number;
  throttledPeriods: number;
  throttledMs: number;
}

export interface CpuControl {
  version: 1 | 2;
  dir: string;
  /** The cgroup's CFS period in µs (100 ms unless someone changed it). */
  periodUs: number;
  /** The quota per period, in µs (null = none), for tightenLimits(). */
  quota: LimitFile;
  /** null once the cgroup is gone (its container stopped). */
  read(): CpuReading | null;
}

/** cpu.max "20000 100000" or "max 100000". */
export function parseCpuMax(text: string): { quota: bigint | null; period: bigint } {
  const [q, p] = text.trim().split(/\s+/);
  if (!q || !/^(max|\d+)$/.test(q)) throw new Error(`cpu.max holds "${text}"; expected "QUOTA PERIOD" or "max PERIOD"`);
  return { quota: q === 'max' ? null : BigInt(q), period: BigInt(p ?? '100000') };
}

/** cpu.max as a limit: the period is written with the quota, so a restore is exact. */
function cpuMaxFile(dir: string, period: bigint): LimitFile {
  const path = join(dir, 'cpu.max');
  const content = (v: bigint | null) => `${v ?? 'max'} ${period}`;
  return {
    key: path,
    read() {
      const s = readCgroupFile(dir, 'cpu.max');
      if (s === null) throw new Error(`${path} is gone (the container stopped)`);
      return parseCpuMax(s).quota;
    },
    write: (v) => writeCgroupFile(path, content(v)),
    undo: (v) => cgroupWriteUndo(path, content(v)),
  };
}

export function cpuControlOf(kind: string, target: ResolvedTarget): CpuControl {
  const { version, dir } = controllerDirOf(kind, target, 'cpu');
  if (version === 1) {
    const period = BigInt(readCgroupFile(dir, 'cpu.cfs_period_us') ?? '100000');
    return {
      version,
      dir,
      periodUs: Number(period),
      // "-1" is how the kernel shows and takes "no quota"; `docker update --cpus 0` does not clear one.
      quota: valueFile(join(dir, 'cpu.cfs_quota_us'), '-1'),
      read() {
        const stat = readCgroupFile(dir, 'cpu.stat');
        const quota = readCgroupFile(dir, 'cpu.cfs_quota_us');
        if (stat === null || quota === null) return null;
        const s = parseFlatKeyed(stat);
        return {
          quotaUs: quota === '-1' ? null : Number(quota),
          periods: s.nr_periods ?? 0,
          throttledPeriods: s.nr_throttled ?? 0,
          throttledMs: (s.throttled_time ?? 0) / 1e6,
        };
      },
    };
  }
  const max = readCgroupFile(dir, 'cpu.max');
  if (max === null) throw new Error(`${dir}/cpu.max is missing although the cpu controller is enabled`);
  const { period } = parseCpuMax(max);
  return {
    version,
    dir,
    periodUs: Number(period),
    quota: cpuMaxFile(dir, period),
    read() {
      const stat = readCgroupFile(dir, 'cpu.stat');
      const now = readCgroupFile(dir, 'cpu.max');
      if (stat === null || now === null) return null;
      const s = parseFlatKeyed(stat);
      const q = parseCpuMax(now).quota;
      return {
        quotaUs: q === null ? null : Number(q),
        periods: s.nr_periods ?? 0,
        throttledPeriods: s.nr_throttled ?? 0,
        throttledMs: (s.throttled_usec ?? 0) / 1e3,
      };
    },
  };
}
