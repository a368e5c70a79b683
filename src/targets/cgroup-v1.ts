// Where a process's cgroup v1 controller directories are, read from /proc,
// never assumed: controllers may be mounted alone (cpu) or together
// (cpu,cpuacct), anywhere, and a mount may show only a sub-tree (its root).
import { readFileSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';

export interface V1Mount {
  /** Where the hierarchy is mounted, e.g. /sys/fs/cgroup/cpu */
  mountPoint: string;
  /** Which part of the hierarchy the mount shows ("/" on the host). */
  root: string;
  /** Controllers of the hierarchy, and "name=..." for named ones. */
  controllers: string[];
}

const NOT_CONTROLLERS = /^(rw|ro|noprefix|clone_children|xattr|cpuset_v2_mode|favordynmods|nsdelegate|release_agent=.*)$/;

/** The cgroup v1 mounts in a /proc/self/mountinfo text. */
export function findCgroupV1Mounts(mountinfo: string): V1Mount[] {
  const out: V1Mount[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fsType, , superOpts = ''] = line.slice(sep + 3).split(' ');
    if (fsType !== 'cgroup') continue;
    const fields = line.slice(0, sep).split(' ');
    const root = fields[3];
    const mountPoint = fields[4];
    if (!root || !mountPoint) continue;
    out.push({
      mountPoint: mountPoint.replace(/\\040/g, ' '),
      root,
      controllers: superOpts.split(',').filter((o) => o && !NOT_CONTROLLERS.test(o)),
    });
  }
  return out;
}

/** A /proc/PID/cgroup text's v1 lines: one per hierarchy, its controllers and path. */
export function parseCgroupV1Paths(procCgroup: string): { controllers: string[]; path: string }[] {
  const out: { controllers: string[]; path: string }[] = [];
  for (const line of procCgroup.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m || m[1] === '0' || !m[2]) continue;
    out.push({ controllers: m[2].split(','), path: m[3] as string });
  }
  return out;
}

/** Joins a mount and a cgroup path, honouring the mount's root. */
export function v1Directory(mount: V1Mount, path: string): string {
  let rel = path;
  if (mount.root !== '/') {
    if (rel !== mount.root && !rel.startsWith(`${mount.root}/`)) {
      throw new Error(`cgroup ${path} is outside the part of its hierarchy mounted at ${mount.mountPoint} (${mount.root})`);
    }
    rel = rel.slice(mount.root.length) || '/';
  }
  return join(mount.mountPoint, posix.normalize(rel));
}

function readProcCgroup(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch (err) {
    throw new Error(`process ${pid} is gone (/proc/${pid}/cgroup: ${(err as NodeJS.ErrnoException).code})`);
  }
}

function mounts(): V1Mount[] {
  return findCgroupV1Mounts(readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** The directory of `pid`'s cgroup in the v1 hierarchy that has `controller` (e.g. "cpu", "memory", "blkio"). */
export function cgroupV1Dir(pid: number, controller: string): string {
  const line = parseCgroupV1Paths(readProcCgroup(pid)).find((l) => l.controllers.includes(controller));
  if (!line) {
    throw new Error(
      `process ${pid} is in no cgroup v1 "${controller}" hierarchy (/proc/${pid}/cgroup); this fault needs the v1 ${controller} controller (Docker with cgroup v1)`,
    );
  }
  const mount = mounts().find((m) => m.controllers.includes(controller));
  if (!mount) throw new Error(`the cgroup v1 "${controller}" hierarchy is not mounted (/proc/self/mountinfo)`);
  return v1Directory(mount, line.path);
}

/** One directory per v1 hierarchy `pid` belongs to (and that is mounted here). */
export function cgroupV1Dirs(pid: number): string[] {
  const all = mounts();
  const dirs: string[] = [];
  for (const line of parseCgroupV1Paths(readProcCgroup(pid))) {
    const mount = all.find((m) => line.controllers.every((c) => m.controllers.includes(c)));
    if (mount) dirs.push(v1Directory(mount, line.path));
  }
  return dirs;
}

/** Reads a cgroup file, trimmed; null when the cgroup is gone. */
export function readCgroupFile(dir: string, file: string): string | null {
  try {
    return readFileSync(join(dir, file), 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Writes a cgroup file; false when the cgroup is gone (its container was removed). */
export function writeCgroupFile(path: string, content: string): boolean {
  try {
    writeFileSync(path, content);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** "key value" lines (memory.stat, cpu.stat, memory.oom_control) as numbers. */
export function parseFlatKeyed(text: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

/** Moves a process (all its threads) into each cgroup directory (v1 and v2 alike). */
export function moveToCgroups(pid: number, dirs: string[]): void {
  for (const dir of dirs) writeFileSync(join(dir, 'cgroup.procs'), String(pid));
}
