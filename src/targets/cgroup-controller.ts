// Which cgroup version holds a controller for a process, and where its
// directory is. A controller is attached to one hierarchy only: on hybrid
// hosts (Docker's cgroupfs driver on cgroup v1) cpu, memory and blkio are v1
// hierarchies and the v2 tree has none; on pure v2 hosts (systemd driver:
// /system.slice/docker-<id>.scope, cgroupfs driver: /docker/<id>) they are
// enabled in the v2 tree. Both are read from /proc/PID/cgroup and
// /proc/self/mountinfo, never from fixed paths, so the resource kinds ask for
// "cpu" and get the right files whatever the host.
import { readFileSync } from 'node:fs';
import { ChaosSpecError } from '../contracts/errors.js';
import { cgroupV1Dir, findCgroupV1Mounts, readCgroupFile } from './cgroup-v1.js';
import { cgroupOfPid, findCgroup2Mount } from './cgroup-v2.js';
import type { ResolvedTarget } from './resolve-target.js';

/** A controller by its v2 name (v1 calls io "blkio"). */
export type Controller = 'cpu' | 'memory' | 'io';

const V1_NAME: Record<Controller, string> = { cpu: 'cpu', memory: 'memory', io: 'blkio' };

export interface ControllerDir {
  version: 1 | 2;
  /** The directory that holds the controller's files for the process. */
  dir: string;
}

/** The controllers listed in a v2 cgroup.controllers file. */
export function parseControllers(text: string | null): string[] {
  return (text ?? '').split(/\s+/).filter(Boolean);
}

/**
 * Where `pid`'s `controller` is: its v1 hierarchy when there is one, else its
 * v2 directory when the controller is enabled there. Throws, saying why, when
 * it is in neither.
 */
export function controllerDir(pid: number, controller: Controller): ControllerDir {
  const v1Name = V1_NAME[controller];
  const v1Mounted = findCgroupV1Mounts(readFileSync('/proc/self/mountinfo', 'utf8')).some((m) => m.controllers.includes(v1Name));
  if (v1Mounted) return { version: 1, dir: cgroupV1Dir(pid, v1Name) };
  const cg = cgroupOfPid(pid);
  const enabled = parseControllers(readCgroupFile(cg.directory, 'cgroup.controllers'));
  if (!enabled.includes(controller)) {
    throw new Error(
      `neither a cgroup v1 "${v1Name}" hierarchy is mounted nor is the v2 "${controller}" controller enabled for ${cg.relative} ` +
        `(its cgroup.controllers: "${enabled.join(' ')}"); enable it in the parent's cgroup.subtree_control`,
    );
  }
  return { version: 2, dir: cg.directory };
}

/** controllerDir() for a fault: a ChaosSpecError naming the target when the controller is missing. */
export function controllerDirOf(kind: string, target: ResolvedTarget, controller: Controller): ControllerDir {
  try {
    return controllerDir(target.pid, controller);
  } catch (err) {
    throw new ChaosSpecError(`chaos.inject(${kind})`, [
      {
        field: 'target',
        value: target.name,
        expected: `a container whose cgroup has the "${controller}" controller, in cgroup v1 or v2 (${(err as Error).message})`,
      },
    ]);
  }
}

export type CgroupLayout = 'v1' | 'hybrid' | 'v2' | 'none';

export interface HostControllers {
  /** v1: only v1 hierarchies; hybrid: v1 controllers and a v2 tree; v2: only the v2 tree. */
  layout: CgroupLayout;
  /** For each controller: the version that holds it, or why none does. */
  controllers: Record<Controller, { version: 1 | 2 } | { missing: string }>;
}

/** What this host offers, from /proc/self/mountinfo and the v2 root's cgroup.controllers. */
export function hostControllers(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8'), v2RootControllers?: string): HostControllers {
  const v1 = findCgroupV1Mounts(mountinfo).filter((m) => m.controllers.some((c) => !c.startsWith('name=')));
  const v2Mount = findCgroup2Mount(mountinfo);
  const v2 = parseControllers(v2RootControllers ?? (v2Mount ? readCgroupFile(v2Mount, 'cgroup.controllers') : null));
  const layout: CgroupLayout = v1.length && v2Mount ? 'hybrid' : v1.length ? 'v1' : v2Mount ? 'v2' : 'none';
  const controllers = {} as HostControllers['controllers'];
  for (const c of ['cpu', 'memory', 'io'] as const) {
    if (v1.some((m) => m.controllers.includes(V1_NAME[c]))) controllers[c] = { version: 1 };
    else if (v2.includes(c)) controllers[c] = { version: 2 };
    else {
      controllers[c] = {
        missing: v2Mount
          ? `no cgroup v1 "${V1_NAME[c]}" hierarchy is mounted and the cgroup v2 root does not offer "${c}" (${v2Mount}/cgroup.controllers: "${v2.join(' ')}")`
          : `no cgroup v1 "${V1_NAME[c]}" hierarchy and no cgroup2 filesystem is mounted`,
      };
    }
  }
  return { layout, controllers };
}
