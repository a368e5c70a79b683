// Disk caps of a target's cgroup, whichever version holds its io controller.
// v1 (blkio): one file per limit, blkio.throttle.{read,write}_{bps,iops}_device,
// lines "MAJ:MIN value" ("MAJ:MIN 0" removes one); it sees reads and direct
// writes only: buffered writes reach the disk from the kernel's flusher, which
// v1 does not charge to the target. v2 (io): one io.max line per disk,
// "MAJ:MIN rbps=.. wbps=.. riops=.. wiops=.." ("max" = none); with the memory
// controller beside it, v2 charges writeback to the cgroup that dirtied the
// pages, so buffered writes are capped too.
import { join } from 'node:path';
import { cgroupWriteUndo } from '../journal/journal.js';
import { controllerDirOf, parseControllers } from './cgroup-controller.js';
import type { LimitFile } from './cgroup-limits.js';
import { readCgroupFile, writeCgroupFile } from './cgroup-v1.js';
import type { ResolvedTarget } from './resolve-target.js';

/** A cap by its io.max key. */
export type IoLimit = 'rbps' | 'wbps' | 'riops' | 'wiops';

export interface IoCounters {
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
}

export interface IoControl {
  version: 1 | 2;
  dir: string;
  /** Whether buffered (page cache) writes are capped too, not only reads and direct writes. */
  capsBufferedWrites: boolean;
  /** What to write for these caps on `device` ("MAJ:MIN"). */
  limits(device: string, caps: readonly (readonly [IoLimit, bigint])[]): { file: LimitFile; value: bigint }[];
  /** What the cgroup did on `device` since it was made; null once it is gone. */
  counters(device: string): IoCounters | null;
}

const V1_FILES: Record<IoLimit, string> = {
  rbps: 'blkio.throttle.read_bps_device',
  wbps: 'blkio.throttle.write_bps_device',
  riops: 'blkio.throttle.read_iops_device',
  wiops: 'blkio.throttle.write_iops_device',
};

/** A v1 per-device file: lines "MAJ:MIN value"; writing "MAJ:MIN 0" removes the rule. */
function v1DeviceFile(path: string, device: string): LimitFile {
  const dir = path.slice(0, path.lastIndexOf('/'));
  const file = path.slice(path.lastIndexOf('/') + 1);
  return {
    key: `${path} ${device}`,
    read() {
      const s = readCgroupFile(dir, file);
      if (s === null) throw new Error(`${path} is gone (the container stopped)`);
      const line = s.split('\n').find((l) => l.startsWith(`${device} `));
      return line ? BigInt(line.split(' ')[1] as string) : null;
    },
    write: (v) => writeCgroupFile(path, `${device} ${v ?? 0}`),
    undo: (v) => cgroupWriteUndo(path, `${device} ${v ?? 0}`),
  };
}

/** The "key=value" pairs of `device`'s line in io.max or io.stat ({} when it has none). */
export function parseIoLine(text: string | null, device: string): Record<string, string> {
  const line = (text ?? '').split('\n').find((l) => l.startsWith(`${device} `));
  const out: Record<string, string> = {};
  for (const kv of (line ?? '').split(' ').slice(1)) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/** One key of `device`'s io.max line; writing "MAJ:MIN key=max" lifts only that cap. */
function ioMaxFile(dir: string, device: string, key: IoLimit): LimitFile {
  const path = join(dir, 'io.max');
  const content = (v: bigint | null) => `${device} ${key}=${v ?? 'max'}`;
  return {
    key: `${path} ${device} ${key}`,
    read() {
      const s = readCgroupFile(dir, 'io.max');
      if (s === null) throw new Error(`${path} is gone (the container stopped)`);
      const v = parseIoLine(s, device)[key];
      return v === undefined || v === 'max' ? null : BigInt(v);
    },
    write: (v) => writeCgroupFile(path, content(v)),
    undo: (v) => cgroupWriteUndo(path, content(v)),
  };
}

export function ioControlOf(kind: string, target: ResolvedTarget): IoControl {
  const { version, dir } = controllerDirOf(kind, target, 'io');
  if (version === 1) {
    return {
      version,
      dir,
      capsBufferedWrites: false,
      limits: (device, caps) => caps.map(([k, value]) => ({ file: v1DeviceFile(join(dir, V1_FILES[k]), device), value })),
      counters(device) {
        const bytes = readCgroupFile(dir, 'blkio.throttle.io_service_bytes');
        const ios = readCgroupFile(dir, 'blkio.throttle.io_serviced');
        if (bytes === null || ios === null) return null;
        const pick = (text: string, op: string) => {
          const line = text.split('\n').find((l) => l.startsWith(`${device} ${op} `));
          return line ? Number(line.split(' ')[2]) : 0;
        };
        return {
          readBytes: pick(bytes, 'Read'),
          writeBytes: pick(bytes, 'Write'),
          readOps: pick(ios, 'Read'),
          writeOps: pick(ios, 'Write'),
        };
      },
    };
  }
  return {
    version,
    dir,
    capsBufferedWrites: parseControllers(readCgroupFile(dir, 'cgroup.controllers')).includes('memory'),
    limits: (device, caps) => caps.map(([k, value]) => ({ file: ioMaxFile(dir, device, k), value })),
    counters(device) {
      const stat = readCgroupFile(dir, 'io.stat');
      if (stat === null) return null;
      const s = parseIoLine(stat, device);
      const n = (k: string) => Number(s[k] ?? 0);
      return { readBytes: n('rbytes'), writeBytes: n('wbytes'), readOps: n('rios'), writeOps: n('wios') };
    },
  };
}
