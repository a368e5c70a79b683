// Where a process's cgroup v2 directory is, read from /proc, never assumed:
// on hybrid hosts v2 is at /sys/fs/cgroup/unified, on pure v2 at /sys/fs/cgroup.
import { readFileSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The cgroup2 mount point in a /proc/self/mountinfo text, or null. */
export function findCgroup2Mount(mountinfo: string): string | null {
  for (const line of mountinfo.split('\n')) {
    // "36 25 0:30 / /sys/fs/cgroup/unified rw,... shared:9 - cgroup2 cgroup2 rw,..."
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fsType = line.slice(sep + 3).split(' ')[0];
    if (fsType !== 'cgroup2') continue;
    const mountPoint = line.slice(0, sep).split(' ')[4];
    if (mountPoint) return mountPoint.replace(/\\040/g, ' ');
  }
  return null;
}

const CGROUP2_SUPER_MAGIC = 0x63677270;

function isCgroup2(path: string): boolean {
  try {
    return Number(statfsSync(path).type) === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/**
 * The cgroup2 mount of this machine: mountinfo's, checked with statfs(2). (A QEMU
 * guest with 5-level paging once showed every mount point as "xxxx": that was its
 * kernel's d_path() failing, fixed in the guest's CPU model, not here.)
 */
export function cgroup2MountOn(mountinfo: string): string | null {
  const listed = findCgroup2Mount(mountinfo);
  return listed && isCgroup2(listed) ? listed : null;
}

/** The v2 path ("0::/docker/ID" -> "/docker/ID") in a /proc/PID/cgroup text, or null. */
export function parseCgroup2Path(procCgroup: string): string | null {
  for (const line of procCgroup.split('\n')) {
    if (line.startsWith('0::')) return line.slice(3).trim() || '/';
  }
  return null;
}

export function cgroup2Mount(): string {
  const mount = cgroup2MountOn(readFileSync('/proc/self/mountinfo', 'utf8'));
  if (!mount) {
    throw new Error(
      'no cgroup2 filesystem is mounted (see /proc/self/mountinfo); mount one with ' +
        '`mount -t cgroup2 none /sys/fs/cgroup/unified` or boot with systemd.unified_cgroup_hierarchy=1',
    );
  }
  return mount;
}

export interface ProcessCgroup {
  /** Path inside the v2 hierarchy, e.g. /docker/abc... */
  relative: string;
  /** Absolute directory, e.g. /sys/fs/cgroup/unified/docker/abc... */
  directory: string;
  /** What bpf_get_current_cgroup_id() returns for it: the directory's inode number. */
  id: bigint;
}

export function cgroupOfPid(pid: number, mount = cgroup2Mount()): ProcessCgroup {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch (err) {
    throw new Error(`process ${pid} is gone (/proc/${pid}/cgroup: ${(err as NodeJS.ErrnoException).code})`);
  }
  const relative = parseCgroup2Path(text);
  if (!relative) throw new Error(`process ${pid} has no cgroup v2 membership in /proc/${pid}/cgroup`);
  const directory = join(mount, relative);
  const id = statSync(directory, { bigint: true }).ino;
  return { relative, directory, id };
}
