// The memory limit, usage and OOM kills of a target's cgroup, whichever
// version holds its memory controller. v1: memory.limit_in_bytes (and
// memory.memsw.limit_in_bytes where swap is accounted), memory.usage_in_bytes,
// memory.oom_control's oom_kill; the kernel refuses (EBUSY) a limit below what
// it cannot reclaim. v2: memory.max (and memory.swap.max 0 where swap is
// accounted), memory.current, memory.events' oom_kill; the kernel takes any
// limit and OOM-kills to meet it, so what cannot be reclaimed is told first.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { controllerDirOf } from './cgroup-controller.js';
import { valueFile, type LimitFile } from './cgroup-limits.js';
import { parseFlatKeyed, readCgroupFile } from './cgroup-v1.js';
import type { ResolvedTarget } from './resolve-target.js';

export interface MemoryReading {
  /** The limit in force, in bytes (Infinity = none). */
  limitBytes: number;
  usageBytes: number;
  /** Processes the OOM killer ended in this cgroup since it was made. */
  oomKills: number;
}

export interface MemoryControl {
  version: 1 | 2;
  dir: string;
  /** What to write for a limit of `bytes`, in the order tightenLimits() must write them. */
  limit(bytes: bigint): { file: LimitFile; value: bigint }[];
  /**
   * Memory in use that the kernel cannot reclaim to meet a new limit (usage
   * minus page cache): a limit below it would OOM-kill at once on v2. null on
   * v1, where the kernel itself refuses such a limit (EBUSY).
   */
  unreclaimableBytes(): number | null;
  /** null once the cgroup is gone (its container stopped). */
  read(): MemoryReading | null;
}

const number = (s: string) => (s === 'max' ? Infinity : Number(s));

export function memoryControlOf(kind: string, target: ResolvedTarget): MemoryControl {
  const { version, dir } = controllerDirOf(kind, target, 'memory');
  if (version === 1) {
    return {
      version,
      dir,
      // memsw >= limit is required: the limit first, memsw after (and the reverse on undo)
      limit: (bytes) =>
        ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes']
          .filter((f) => existsSync(join(dir, f)))
          .map((f) => ({ file: valueFile(join(dir, f)), value: bytes })),
      unreclaimableBytes: () => null,
      read() {
        const limit = readCgroupFile(dir, 'memory.limit_in_bytes');
        const usage = readCgroupFile(dir, 'memory.usage_in_bytes');
        if (limit === null || usage === null) return null;
        // memory.failcnt is not kept by every kernel (6.18 leaves it at 0): count OOM kills.
        return {
          limitBytes: Number(limit),
          usageBytes: Number(usage),
          oomKills: parseFlatKeyed(readCgroupFile(dir, 'memory.oom_control')).oom_kill ?? 0,
        };
      },
    };
  }
  return {
    version,
    dir,
    limit: (bytes) => [
      { file: valueFile(join(dir, 'memory.max'), 'max'), value: bytes },
      // v2 counts swap apart: no swap, so the target cannot swap its way past the limit
      ...(existsSync(join(dir, 'memory.swap.max')) ? [{ file: valueFile(join(dir, 'memory.swap.max'), 'max'), value: 0n }] : []),
    ],
    unreclaimableBytes() {
      const current = readCgroupFile(dir, 'memory.current');
      if (current === null) return null;
      return Number(current) - (parseFlatKeyed(readCgroupFile(dir, 'memory.stat')).file ?? 0);
    },
    read() {
      const limit = readCgroupFile(dir, 'memory.max');
      const usage = readCgroupFile(dir, 'memory.current');
      if (limit === null || usage === null) return null;
      return {
        limitBytes: number(limit),
        usageBytes: Number(usage),
        oomKills: parseFlatKeyed(readCgroupFile(dir, 'memory.events')).oom_kill ?? 0,
      };
    },
  };
}
