// Everything a fault could leave behind, read from the kernel, the cgroup
// files, Docker and the journal directory rather than from our bookkeeping:
// the bpf links this process holds (its fds), the entries of our slot maps, the
// target's cgroup values and processes, qdiscs on its veth and eth0, its Docker
// state, disk-fill files in its /tmp, and journal records and limit stacks.
// Compare snapshots taken before and after with toEqual.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { kernel } from '../../src/kernel/kernel.js';
import { releaseIdle } from '../../src/targets/release-idle.js';
import { docker } from './processes.js';
import { cgroupDirOf } from './target-info.js';
import { vethOf } from './veth.js';

/** The bpf links and maps this process holds, as counts by type (from /proc/self/fd and fdinfo). */
export function ownBpfObjects(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const fd of readdirSync('/proc/self/fd')) {
    let what: string;
    try {
      what = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (what !== 'anon_inode:bpf_link') continue;
    let info = '';
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    const type = /^link_type:\s+(\w+)/m.exec(info)?.[1] ?? '?';
    out[`link ${type}`] = (out[`link ${type}`] ?? 0) + 1;
  }
  return out;
}

/** Entries of every slot, rule and stats map of the programs we load (loads them once). */
export function slotMapEntries(): Record<string, number> {
  const k = kernel();
  const out: Record<string, number> = {};
  for (const set of [k.packetDrop, k.connect, k.veth, k.dns]) {
    for (const m of set.object.maps()) {
      if (!/(slots|rules|stats)$/.test(m.name)) continue;
      const n = set.object.mapKeys(m.name).length;
      if (n) out[m.name] = n;
    }
  }
  // The packet path's slots: a fault in force is an active slot (and its ports, flows, proxies).
  for (const [name, n] of Object.entries(k.queueMatch.inUse())) if (n) out[name] = n;
  return out;
}

const V1_FILES = [
  'cpu/cpu.cfs_quota_us',
  'memory/memory.limit_in_bytes',
  'memory/memory.memsw.limit_in_bytes',
  'blkio/blkio.throttle.read_bps_device',
  'blkio/blkio.throttle.write_bps_device',
  'blkio/blkio.throttle.read_iops_device',
  'blkio/blkio.throttle.write_iops_device',
];

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().replace(/\n/g, ' ');
  } catch {
    return '(none)';
  }
}

/** Journal records and limit stacks in a journal directory (every file but those of other runs' pids). */
export function journalFiles(dir: string, pid = process.pid): string[] {
  const out: string[] = [];
  const list = (d: string) => {
    try {
      return readdirSync(d);
    } catch {
      return [];
    }
  };
  for (const f of list(dir)) if (f.startsWith(`${pid}-`)) out.push(f);
  for (const f of list(join(dir, 'limits'))) out.push(`limits/${f}`);
  return out.sort();
}

/**
 * "kind handle" of a device's root qdisc, in our netns or a container's. A netlink dump that
 * other runs' link changes interrupted ("Dump was interrupted") is read again, not trusted.
 */
function rootQdisc(dev: string, pid?: number): string {
  const argv = [...(pid ? ['nsenter', `--net=/proc/${pid}/ns/net`, '--'] : []), 'tc', '-j', 'qdisc', 'show', 'dev', dev, 'root'];
  for (let attempt = 0; ; attempt++) {
    const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8' });
    if (r.status === 0 && !/interrupted/i.test(r.stderr) && r.stdout.trim()) {
      return (JSON.parse(r.stdout) as { kind: string; handle: string }[]).map((q) => `${q.kind} ${q.handle}`).join(', ');
    }
    if (attempt >= 4) throw new Error(`${argv.join(' ')} failed: ${r.status} ${r.stderr.trim()}`);
  }
}

export interface TargetState {
  cgroup: Record<string, string>;
  processes: number;
  qdiscs: string;
  docker: string;
  tmpFiles: string[];
}

/** What a fault could change on one container. */
export async function targetState(c: StartedTestContainer): Promise<TargetState> {
  const info = await docker.getContainer(c.getId()).inspect();
  const cgroup: Record<string, string> = {};
  for (const f of V1_FILES) {
    const [ctl, file] = f.split('/') as [string, string];
    cgroup[f] = read(`/sys/fs/cgroup/${ctl}/docker/${info.Id}/${file}`);
  }
  let processes = -1;
  let qdiscs = '(stopped)';
  if (info.State.Running) {
    processes = read(`${await cgroupDirOf(c)}/cgroup.procs`)
      .split(' ')
      .filter(Boolean).length;
    const v = await vethOf(c);
    qdiscs = `${rootQdisc(v.hostIfname)} | ${rootQdisc('eth0', v.pid)}`;
  }
  const upper = (info.GraphDriver.Data as Record<string, string>).UpperDir;
  let tmpFiles: string[] = [];
  try {
    tmpFiles = readdirSync(`${upper}/tmp`).filter((f) => f.startsWith('vitest-chaos'));
  } catch {
    // nothing written to /tmp yet
  }
  return { cgroup, processes, qdiscs, docker: `${info.State.Status}${info.State.Paused ? ' paused' : ''}`, tmpFiles };
}

export interface Leftovers {
  bpf: Record<string, number>;
  maps: Record<string, number>;
  journal: string[];
  targets: TargetState[];
}

/**
 * The whole snapshot: this process's bpf objects and maps, the journal, each container's state.
 * The packet path's kept rules of a netns with no fault in force are taken down first, as at the
 * end of a test file: they are no fault's leftover (a slot in use shows in the maps and the journal).
 */
export async function leftovers(journalDir: string, ...containers: StartedTestContainer[]): Promise<Leftovers> {
  await releaseIdle();
  return {
    bpf: ownBpfObjects(),
    maps: slotMapEntries(),
    journal: journalFiles(journalDir),
    targets: await Promise.all(containers.map(targetState)),
  };
}

/**
 * This process's open file descriptors; `withoutBpf`: not counting BPF programs,
 * maps and BTF (the kernel programs' objects, loaded at first use and kept for the
 * process: one per packet-path slot used).
 */
export function fdCount(withoutBpf = false): number {
  const fds = readdirSync('/proc/self/fd');
  if (!withoutBpf) return fds.length;
  return fds.filter((fd) => {
    try {
      return !/^anon_inode:(bpf-|btf)/.test(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      return false;
    }
  }).length;
}

/**
 * The cheap part of the snapshot, for every fuzz case: bpf objects, slot maps,
 * the journal, and each container's cgroup values and process count (host
 * files only; no Docker or tc round trip). Takes full container ids.
 */
export function quickLeftovers(journalDir: string, ...ids: string[]): unknown {
  return {
    bpf: ownBpfObjects(),
    maps: slotMapEntries(),
    journal: journalFiles(journalDir),
    targets: ids.map((id) => ({
      cgroup: Object.fromEntries(V1_FILES.map((f) => [f, read(`/sys/fs/cgroup/${f.split('/')[0]}/docker/${id}/${f.split('/')[1]}`)])),
      processes: read(`/sys/fs/cgroup/pids/docker/${id}/cgroup.procs`).split(' ').filter(Boolean).length,
    })),
  };
}
