// io-throttle: caps the target's reads and writes on the disk that holds its
// files (cgroup v1: blkio.throttle.*; v2: io.max). cgroup v1 sees reads and
// direct (O_DIRECT) writes only: buffered writes reach the disk later, from the
// kernel's flusher, and are not throttled. cgroup v2 charges that writeback to
// the target, so its buffered writes are held to the cap too.
import { z } from 'zod';
import { ChaosSpecError } from '../../contracts/errors.js';
import { diskOf } from '../../targets/block-device.js';
import type { FaultKind } from '../fault-kind.js';
import { limitFault, tightenLimits } from '../../targets/cgroup-limits.js';
import { ioControlOf, type IoCounters } from '../../targets/io-control.js';

const RATES = ['readBytesPerSec', 'writeBytesPerSec', 'readIops', 'writeIops'] as const;
const LIMITS = { readBytesPerSec: 'rbps', writeBytesPerSec: 'wbps', readIops: 'riops', writeIops: 'wiops' } as const;

const rate = (unit: string) => {
  const what = `an integer number of ${unit} from 1 to 2^53`;
  return z.number({ error: what }).int({ error: what }).min(1, { error: what }).max(Number.MAX_SAFE_INTEGER, { error: what }).optional();
};

const schema = z
  .strictObject({
    /** Bytes per second the target may read from its disk (integer >= 1). Default: no cap. */
    readBytesPerSec: rate('bytes per second'),
    /** Bytes per second the target may write (direct writes; buffered ones too on cgroup v2). Default: no cap. */
    writeBytesPerSec: rate('bytes per second'),
    /** Read operations per second (integer >= 1). Default: no cap. At least one of the four is required. */
    readIops: rate('operations per second'),
    /** Write operations per second (integer >= 1). Default: no cap. */
    writeIops: rate('operations per second'),
    /** An absolute path in the container: the disk that holds it is capped. Default '/' (the writable layer). */
    path: z
      .string({ error: 'an absolute path in the container' })
      .regex(/^\//, { error: 'an absolute path in the container' })
      .default('/'),
  })
  .refine((p) => RATES.some((k) => p[k] !== undefined), {
    path: ['readBytesPerSec'],
    error: `at least one of ${RATES.join(', ')}`,
  });

export type IoThrottleParams = z.input<typeof schema>;

/** The capped device, and the bytes and operations the target did on it since the fault started. */
export interface IoThrottleStats extends IoCounters {
  deviceMajor: number;
  deviceMinor: number;
  /** 1 where buffered writes are capped too (cgroup v2 with the memory controller), 0 where only direct ones are (v1). */
  bufferedWritesCapped: number;
}

export const ioThrottle: FaultKind<'io-throttle', typeof schema, IoThrottleStats> = {
  kind: 'io-throttle',
  matched: () => 1,
  matchedWhat: "the target's cgroup (always reached)",
  schema,
  async apply(p, target, ctx) {
    const io = ioControlOf('io-throttle', target);
    let device: string;
    try {
      device = diskOf(target.pid, p.path);
    } catch (err) {
      throw new ChaosSpecError('chaos.inject(io-throttle)', [
        { field: 'path', value: p.path, expected: `a path on a block device in the container (${(err as Error).message})` },
      ]);
    }
    const caps = RATES.filter((k) => p[k] !== undefined).map((k) => [LIMITS[k], BigInt(p[k] as number)] as const);
    const before: IoCounters = io.counters(device) ?? { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 };
    const held = tightenLimits(ctx, `io-throttle on ${target.name} (disk ${device})`, io.limits(device, caps));
    const [major, minor] = device.split(':').map(Number);
    return limitFault(held, () => {
      const now = io.counters(device);
      if (!now) return null;
      return {
        deviceMajor: major ?? 0,
        deviceMinor: minor ?? 0,
        bufferedWritesCapped: io.capsBufferedWrites ? 1 : 0,
        readBytes: now.readBytes - before.readBytes,
        writeBytes: now.writeBytes - before.writeBytes,
        readOps: now.readOps - before.readOps,
        writeOps: now.writeOps - before.writeOps,
      };
    });
  },
};
