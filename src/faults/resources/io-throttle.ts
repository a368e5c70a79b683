// io-throttle: caps the target's reads and writes on the disk that holds its
// files (blkio.throttle.* of its cgroup v1 blkio controller). cgroup v1 sees
// reads and direct (O_DIRECT) writes; buffered writes reach the disk later,
// from the kernel's flusher, and are not throttled.
import { join } from 'node:path';
import { z } from 'zod';
import { ChaosSpecError } from '../../contracts/errors.js';
import { diskOf } from '../../targets/block-device.js';
import { readCgroupFile } from '../../targets/cgroup-v1.js';
import type { FaultKind } from '../fault-kind.js';
import { deviceFile, limitFault, tightenLimits, v1DirOf } from '../../targets/cgroup-limits.js';

const RATES = ['readBytesPerSec', 'writeBytesPerSec', 'readIops', 'writeIops'] as const;
const FILES = {
  readBytesPerSec: 'blkio.throttle.read_bps_device',
  writeBytesPerSec: 'blkio.throttle.write_bps_device',
  readIops: 'blkio.throttle.read_iops_device',
  writeIops: 'blkio.throttle.write_iops_device',
} as const;

const rate = (unit: string) => {
  const what = `an integer number of ${unit} from 1 to 2^53`;
  return z.number({ error: what }).int({ error: what }).min(1, { error: what }).max(Number.MAX_SAFE_INTEGER, { error: what }).optional();
};

const schema = z
  .strictObject({
    /** Bytes per second the target may read from its disk (integer >= 1). Default: no cap. */
    readBytesPerSec: rate('bytes per second'),
    /** Bytes per second the target may write DIRECTLY (cgroup v1 does not throttle buffered writes). Default: no cap. */
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

interface Serviced {
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
}

/** The capped device, and the bytes and operations the target did on it since the fault started. */
export interface IoThrottleStats extends Serviced {
  deviceMajor: number;
  deviceMinor: number;
}

/** Bytes and operations the cgroup did on the device, from blkio.throttle.io_service_{bytes,d}. */
function serviced(dir: string, device: string): Serviced | null {
  const bytes = readCgroupFile(dir, 'blkio.throttle.io_service_bytes');
  const ios = readCgroupFile(dir, 'blkio.throttle.io_serviced');
  if (bytes === null || ios === null) return null;
  const pick = (text: string, op: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${device} ${op} `));
    return line ? Number(line.split(' ')[2]) : 0;
  };
  return { readBytes: pick(bytes, 'Read'), writeBytes: pick(bytes, 'Write'), readOps: pick(ios, 'Read'), writeOps: pick(ios, 'Write') };
}

export const ioThrottle: FaultKind<'io-throttle', typeof schema, IoThrottleStats> = {
  kind: 'io-throttle',
  schema,
  async apply(p, target, ctx) {
    const dir = v1DirOf('io-throttle', target, 'blkio');
    let device: string;
    try {
      device = diskOf(target.pid, p.path);
    } catch (err) {
      throw new ChaosSpecError('chaos.inject(io-throttle)', [
        { field: 'path', value: p.path, expected: `a path on a block device in the container (${(err as Error).message})` },
      ]);
    }
    const items = RATES.filter((k) => p[k] !== undefined).map((k) => ({
      file: deviceFile(join(dir, FILES[k]), device),
      value: BigInt(p[k] as number),
    }));
    const before: Serviced = serviced(dir, device) ?? { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 };
    const held = tightenLimits(ctx, `io-throttle on ${target.name} (disk ${device})`, items);
    return limitFault(held, () => {
      const now = serviced(dir, device);
      if (!now) return null;
      const [major, minor] = device.split(':').map(Number);
      return {
        deviceMajor: major ?? 0,
        deviceMinor: minor ?? 0,
        readBytes: now.readBytes - before.readBytes,
        writeBytes: now.writeBytes - before.writeBytes,
        readOps: now.readOps - before.readOps,
        writeOps: now.writeOps - before.writeOps,
      };
    });
  },
};
