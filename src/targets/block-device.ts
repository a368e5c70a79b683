// Which disk holds a path of a container: the major:minor that blkio
// throttling rules name. Read from the container's own mount table
// (/proc/PID/mountinfo); an overlay root is on the disk of its upper (writable)
// directory. Partitions map to their disk: the kernel throttles whole disks.
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { posix } from 'node:path';

/** "MAJ:MIN" of a Linux dev_t (glibc's encoding). */
export function majorMinor(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/** The whole disk of a block device ("254:1" -> "254:0"); throws for a device that is not a block device. */
export function wholeDisk(mm: string): string {
  const sys = `/sys/dev/block/${mm}`;
  if (!existsSync(sys)) throw new Error(`its filesystem is on device ${mm}, not on a block device`);
  if (!existsSync(`${sys}/partition`)) return mm;
  return readFileSync(`${realpathSync(sys)}/../dev`, 'utf8').trim();
}

export interface MountEntry {
  majorMinor: string;
  mountPoint: string;
  fsType: string;
  superOptions: string;
}

const unescapeOctal = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const f = line.slice(0, sep).split(' ');
    const [fsType = '', , superOptions = ''] = line.slice(sep + 3).split(' ');
    if (f[2] && f[4]) out.push({ majorMinor: f[2], mountPoint: unescapeOctal(f[4]), fsType, superOptions });
  }
  return out;
}

/** The mount that holds `path`: the deepest mount point above it, the last one mounted there. */
export function mountCovering(mounts: MountEntry[], path: string): MountEntry | undefined {
  const p = posix.normalize(path);
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const under = m.mountPoint === '/' || p === m.mountPoint || p.startsWith(`${m.mountPoint}/`);
    if (under && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/** "MAJ:MIN" of the disk that holds `path` in the mount namespace of process `pid`. */
export function diskOf(pid: number, path: string): string {
  const mount = mountCovering(parseMountinfo(readFileSync(`/proc/${pid}/mountinfo`, 'utf8')), path);
  if (!mount) throw new Error(`no mount holds ${path}`);
  if (mount.fsType === 'overlay') {
    const upper = /(?:^|,)upperdir=([^,]+)/.exec(mount.superOptions)?.[1];
    if (!upper) throw new Error(`the overlay at ${mount.mountPoint} has no writable layer`);
    return wholeDisk(majorMinor(statSync(unescapeOctal(upper), { bigint: true }).dev));
  }
  return wholeDisk(mount.majorMinor);
}
