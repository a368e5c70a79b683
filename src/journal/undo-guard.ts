// What an undo action must satisfy beyond its schema before it runs as root:
// a cgroup write lands in a container's cgroup directory on a cgroup mount
// (as /proc/self/mountinfo lists them, no symlink on the way); a kill hits
// only a process we started (same start time, and our mark in its command
// line); and, for records read from disk, every container named carries the
// label of a run of ours, and a host-side device is that container's veth.
import type Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { readFileSync, realpathSync, statfsSync } from 'node:fs';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { OWN_PROCESS_MARK, processStartTicks, processStat } from './process-start.js';
import type { UndoAction } from './undo-schema.js';

/** An action failed its checks: nothing of its record was run. */
export class UndoRefused extends Error {
  override name = 'UndoRefused';
}

export interface Checked {
  action: UndoAction;
  /** What it would undo is gone already (container removed): nothing to run. */
  gone: boolean;
}

/** Labels that mark a container started by a run of ours: Testcontainers' own, or the suite's run label. */
export function isOurContainer(labels: Record<string, string> | null | undefined): boolean {
  return labels?.['org.testcontainers'] === 'true' || labels?.['vitest-chaos.run'] !== undefined;
}

const CGROUP_MAGIC = new Set([0x27e0eb, 0x63677270]); // cgroup v1, cgroup2
const CONTAINER_DIR = /^(?:docker-)?([0-9a-f]{64})(?:\.scope)?$/;

/** Mount points of every cgroup (v1) and cgroup2 filesystem here. */
export function cgroupMountPoints(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fsType = line.slice(sep + 3).split(' ')[0];
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    const mountPoint = line.slice(0, sep).split(' ')[4];
    if (mountPoint) out.push(mountPoint.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
  }
  return out;
}

const run = promisify(execFile);

export async function checkUndo(a: UndoAction, i: number, docker: Docker, fromDisk: boolean): Promise<Checked> {
  const refuse = (why: string): never => {
    throw new UndoRefused(`undo[${i}] (${a.type}): ${why}`);
  };
  const ours = async (id: string): Promise<Docker.ContainerInspectInfo | null> => {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await docker.getContainer(id).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw err;
    }
    if (!isOurContainer(info.Config.Labels)) {
      refuse(
        `container ${id.slice(0, 12)} (${info.Name.replace(/^\//, '')}) carries neither org.testcontainers=true nor vitest-chaos.run: no run of ours started it`,
      );
    }
    return info;
  };

  switch (a.type) {
    case 'cgroup-write': {
      const dir = posix.dirname(a.path);
      const mount = cgroupMountPoints().find((m) => dir === m || dir.startsWith(`${m}/`));
      if (!mount) refuse(`${a.path} is not under a cgroup mount (${cgroupMountPoints().join(', ') || 'none'})`);
      const id = CONTAINER_DIR.exec(posix.basename(dir))?.[1];
      if (!id) refuse(`${dir} is not a container's cgroup directory (<container id> or docker-<container id>.scope)`);
      let real: string;
      try {
        real = realpathSync(dir);
      } catch {
        return { action: a, gone: true }; // the cgroup went with its container
      }
      if (real !== dir) refuse(`${dir} leads elsewhere (${real})`);
      if (!CGROUP_MAGIC.has(Number(statfsSync(dir).type))) refuse(`${dir} is not on a cgroup filesystem`);
      if (fromDisk && !(await ours(id as string))) return { action: a, gone: true };
      return { action: a, gone: false };
    }
    case 'kill':
      for (const p of a.pids) {
        if (processStartTicks(p.pid) !== p.start) continue; // not that process any more: the kill skips it
        let cmdline = '';
        try {
          cmdline = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');
        } catch {
          continue; // exited meanwhile
        }
        if (cmdline === '' && isZombie(p.pid)) continue; // exited, not yet reaped: a signal does nothing
        if (!cmdline.split('\0').some((arg) => arg.startsWith(OWN_PROCESS_MARK))) {
          refuse(`process ${p.pid} (${cmdline.split('\0')[0]}) is not one vitest-chaos started`);
        }
      }
      return { action: a, gone: false };
    case 'docker-unpause':
    case 'docker-start':
    case 'disk-fill-remove':
      if (fromDisk && !(await ours(a.containerId))) return { action: a, gone: true };
      return { action: a, gone: false };
    case 'iptables-chain-del': {
      if (!fromDisk) return { action: a, gone: false };
      const info = await ours(a.containerId);
      const sandbox = info?.NetworkSettings?.SandboxKey ?? '';
      // A stopped or re-created sandbox took its rules with it.
      return { action: a, gone: !info?.State.Running || a.netns !== sandbox };
    }
    case 'tc-qdisc-del': {
      if (!fromDisk) return { action: a, gone: false };
      const info = await ours(a.containerId);
      const sandbox = info?.NetworkSettings?.SandboxKey ?? '';
      // A stopped or re-created sandbox took its interfaces and our qdiscs with it.
      if (!info?.State.Running || !sandbox) return { action: a, gone: true };
      if (a.netns !== null) return { action: a, gone: a.netns !== sandbox };
      let ifindex: number;
      try {
        ifindex = Number(readFileSync(`/sys/class/net/${a.device}/ifindex`, 'utf8'));
      } catch {
        return { action: a, gone: true };
      }
      const { stdout } = await run('nsenter', [`--net=${sandbox}`, '--', 'ip', '-j', 'link', 'show']);
      const peers = (JSON.parse(stdout) as { link_index?: number }[]).map((l) => l.link_index);
      if (!peers.includes(ifindex)) refuse(`${a.device} is not the host side of a veth of container ${a.containerId.slice(0, 12)}`);
      return { action: a, gone: false };
    }
  }
}

function isZombie(pid: number): boolean {
  const s = processStat(pid);
  return !s || s.state === 'Z'; // gone, or a zombie
}
