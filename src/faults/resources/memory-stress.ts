// memory-stress: a process inside the target's cgroups allocates `bytes` and
// writes to every page (so it is resident and charged to the target), at once
// or at `rateBytesPerSec`, and holds it until revert. Past the target's memory
// limit, the kernel's OOM killer picks a victim inside the target (often the hog).
import { freemem } from 'node:os';
import { z } from 'zod';
import { ChaosSpecError } from '../../contracts/errors.js';
import type { FaultKind } from '../fault-kind.js';
import { memoryControlOf } from '../../targets/memory-control.js';
import { startInTarget } from '../../targets/target-processes.js';

const BYTES = 'an integer number of bytes from 1048576 (1 MiB) to 2^46';
const RATE = 'an integer number of bytes per second, at least 1048576 (1 MiB/s)';

const schema = z.strictObject({
  /** Bytes allocated and written, 1 MiB to 2^46. Required. */
  bytes: z
    .number({ error: BYTES })
    .int({ error: BYTES })
    .min(1 << 20, { error: BYTES })
    .max(2 ** 46, { error: BYTES }),
  /** Allocate at this pace, in bytes per second (at least 1 MiB/s). Default: at once. */
  rateBytesPerSec: z
    .number({ error: RATE })
    .int({ error: RATE })
    .min(1 << 20, { error: RATE })
    .max(2 ** 46, { error: RATE })
    .optional(),
});

export type MemoryStressParams = z.input<typeof schema>;

export interface MemoryStressStats {
  /** Bytes the hog allocated and touched so far. */
  allocatedBytes?: number;
  /** The target's memory usage now and before the fault, in bytes. */
  targetUsageBytes?: number;
  targetUsageBeforeBytes?: number;
  /** 1 while the hog runs; 1 in hogKilled when the OOM killer took it. */
  hogRunning?: number;
  hogKilled?: number;
}

const HOG = `
const total = Number(process.argv[1]), rate = Number(process.argv[2]);
const chunk = rate > 0 ? Math.max(1 << 20, Math.min(16 << 20, Math.floor(rate / 20))) : 16 << 20;
const held = [];
let done = 0, t0 = 0;
function step() {
  const allowed = rate > 0 ? Math.min(total, (rate * (Date.now() - t0)) / 1000) : total;
  while (done < total && done + Math.min(chunk, total - done) <= allowed) {
    const n = Math.min(chunk, total - done);
    held.push(Buffer.allocUnsafeSlow(n).fill(0x5a)); // every page written: resident
    done += n;
    process.stdout.write('ALLOCATED ' + done + '\\n');
  }
  if (done < total) setTimeout(step, 50);
}
go.then(() => { t0 = Date.now(); step(); });
`;

// Without a memory limit on the target, its memory is the host's: keep a margin.
const HOST_SHARE = 0.8;

export const memoryStress: FaultKind<'memory-stress', typeof schema, MemoryStressStats> = {
  kind: 'memory-stress',
  matched: (s) => ((s.allocatedBytes ?? 0) > 0 ? 1 : 0),
  matchedWhat: 'memory hogs that allocated in the target',
  schema,
  async apply(p, target, ctx) {
    const memory = memoryControlOf('memory-stress', target);
    const limit = memory.read()?.limitBytes ?? Infinity;
    const hostFree = freemem();
    if (limit > hostFree && p.bytes > hostFree * HOST_SHARE) {
      throw new ChaosSpecError('chaos.inject(memory-stress)', [
        {
          field: 'bytes',
          value: p.bytes,
          expected: `at most ${Math.floor(hostFree * HOST_SHARE)} (80% of the host's free memory) when the target has no memory limit below it: the host would run out of memory`,
        },
      ]);
    }
    const usage = (): number | undefined => memory.read()?.usageBytes; // undefined: the container is gone
    const usageBefore = usage() ?? 0;
    let allocated = 0;
    let allDone: () => void = () => {};
    const finished = new Promise<void>((resolve) => (allDone = resolve));
    const procs = await startInTarget(target, ctx, {
      description: `memory-stress ${p.bytes} bytes in ${target.name}`,
      script: HOG,
      argv: [[String(p.bytes), String(p.rateBytesPerSec ?? 0)]],
      onLine(_i, line) {
        const m = /^ALLOCATED (\d+)$/.exec(line);
        if (m) allocated = Number(m[1]);
        if (allocated >= p.bytes) allDone();
      },
    });
    if (p.rateBytesPerSec === undefined) {
      // At once: in force when inject() resolves (or the hog was OOM-killed on the way).
      await Promise.race([finished, procs.exited]);
    }
    let last: MemoryStressStats = {};
    let stopped = false;
    const stats = (): MemoryStressStats => {
      if (stopped) return last;
      last = {
        allocatedBytes: allocated,
        targetUsageBytes: usage() ?? last.targetUsageBytes ?? 0,
        targetUsageBeforeBytes: usageBefore,
        hogRunning: procs.running(),
        hogKilled: procs.killed(),
      };
      return last;
    };
    return {
      stats,
      async revert() {
        if (stopped) return;
        stats();
        stopped = true;
        await procs.stop();
      },
    };
  },
};
