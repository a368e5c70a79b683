// memory-limit: the target's memory cgroup is limited to `bytes` (cgroup v1:
// memory.limit_in_bytes, and memory.memsw.limit_in_bytes where swap is
// accounted; v2: memory.max, and memory.swap.max 0), so the target cannot swap
// its way past it. Allocating past it gets a process of the target
// OOM-killed; stats() counts the kills.
import { z } from 'zod';
import { ChaosSpecError } from '../../contracts/errors.js';
import type { FaultKind } from '../fault-kind.js';
import { tightenLimits } from '../../targets/cgroup-limits.js';
import { memoryControlOf } from '../../targets/memory-control.js';

const BYTES = 'an integer number of bytes from 4194304 (4 MiB) to 2^62';

const schema = z.strictObject({
  /** The target's memory limit in bytes, 4 MiB to 2^62. Required. */
  bytes: z
    .number({ error: BYTES })
    .int({ error: BYTES })
    .min(4 << 20, { error: BYTES })
    .max(2 ** 62, { error: BYTES }),
});

export type MemoryLimitParams = z.input<typeof schema>;

export interface MemoryLimitStats {
  /** The limit in force, and what the target uses now, in bytes. */
  limitBytes?: number;
  usageBytes?: number;
  /** Processes of the target the OOM killer ended since the fault started. */
  oomKills?: number;
  /** 1 when the target's main process was the victim (the container exited). */
  targetOomKilled?: number;
}

export const memoryLimit: FaultKind<'memory-limit', typeof schema, MemoryLimitStats> = {
  kind: 'memory-limit',
  matched: () => 1,
  matchedWhat: "the target's cgroup (always reached)",
  schema,
  async apply(p, target, ctx) {
    const memory = memoryControlOf('memory-limit', target);
    const tooLow = (usage: number) =>
      new ChaosSpecError('chaos.inject(memory-limit)', [
        {
          field: 'bytes',
          value: p.bytes,
          expected: `more than the target's memory in use (${usage} bytes): the kernel cannot take back memory in use; add a memory-stress to push the target past a limit`,
        },
      ]);
    // v2 would OOM-kill to meet such a limit at once: refuse it before writing, as v1's kernel does
    const inUse = memory.unreclaimableBytes();
    if (inUse !== null && p.bytes < inUse) throw tooLow(inUse);
    const oomKills = (): number => memory.read()?.oomKills ?? 0;
    const before = oomKills();
    let held: ReturnType<typeof tightenLimits>;
    try {
      held = tightenLimits(ctx, `memory-limit ${p.bytes} bytes on ${target.name}`, memory.limit(BigInt(p.bytes)));
    } catch (err) {
      // v1: the kernel reclaims what it can (page cache) and refuses a limit below what is left
      if ((err as NodeJS.ErrnoException).code === 'EBUSY') throw tooLow(memory.read()?.usageBytes ?? 0);
      throw err;
    }
    let last: MemoryLimitStats = {};
    let released = false;
    let askedDocker: Promise<void> | undefined;
    const stats = (): MemoryLimitStats => {
      if (released) return last;
      const now = memory.read();
      if (now === null) {
        // The container is gone: was its main process the OOM killer's victim?
        askedDocker ??= ctx.docker
          .getContainer(target.id)
          .inspect()
          .then((info) => {
            if (info.State.OOMKilled) last = { ...last, targetOomKilled: 1, oomKills: Math.max(1, last.oomKills ?? 0) };
          })
          .catch(() => {}); // removed: nothing more to learn
        return last;
      }
      last = {
        limitBytes: now.limitBytes,
        usageBytes: now.usageBytes,
        oomKills: now.oomKills - before,
        targetOomKilled: 0,
      };
      return last;
    };
    // Sampled, so the counts survive a container that the OOM killer ended.
    const sampler = setInterval(stats, 250).unref();
    return {
      stats,
      async revert() {
        if (released) return;
        stats();
        clearInterval(sampler);
        released = true;
        held.release();
        await askedDocker;
      },
    };
  },
};
