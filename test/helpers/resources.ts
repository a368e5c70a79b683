// Helpers of the resource-fault tests. What a container's cgroups hold is read
// from inside the container (Docker mounts its own v1 cgroups at
// /sys/fs/cgroup/<controller>), and the host's own values from the host's
// hierarchies: both independent of the code under test.
import { readFileSync, readdirSync } from 'node:fs';
import type { StartedTestContainer } from 'testcontainers';
import { sh } from './containers.js';
import { cgroupDirOf } from './target-info.js';

export const MiB = 1 << 20;

/** The cgroup values a resource fault may change, plus the files in /tmp, as "name=value" lines. */
const FILES = [
  'cpu/cpu.cfs_quota_us',
  'cpu/cpu.cfs_period_us',
  'memory/memory.limit_in_bytes',
  'memory/memory.memsw.limit_in_bytes',
  'blkio/blkio.throttle.read_bps_device',
  'blkio/blkio.throttle.write_bps_device',
  'blkio/blkio.throttle.read_iops_device',
  'blkio/blkio.throttle.write_iops_device',
];

export async function cgroupState(c: StartedTestContainer): Promise<Record<string, string>> {
  const script = [
    'cd /sys/fs/cgroup',
    `for f in ${FILES.join(' ')}; do echo "$f=$(tr '\\n' ' ' < $f)"; done`,
    `echo "tmp=$(ls -A /tmp | tr '\\n' ' ')"`,
  ].join('\n');
  const { output, exitCode } = await sh(c, script);
  if (exitCode !== 0) throw new Error(`reading cgroup state of ${c.getName()} failed: ${output}`);
  const out: Record<string, string> = {};
  for (const line of output.trim().split('\n')) {
    const i = line.indexOf('=');
    out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** A cgroup v1 file as the container sees it, e.g. "cpu/cpu.cfs_quota_us". */
export async function cgroupValue(c: StartedTestContainer, file: string): Promise<string> {
  const { output, exitCode } = await sh(c, `cat /sys/fs/cgroup/${file}`);
  if (exitCode !== 0) throw new Error(`cat ${file} in ${c.getName()} failed: ${output}`);
  return output.trim();
}

/** The processes of the container (pid and command line, host view), through its cgroup v2 directory. */
export async function processesIn(c: StartedTestContainer): Promise<string[]> {
  const procs = readFileSync(`${await cgroupDirOf(c)}/cgroup.procs`, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean);
  return procs
    .map((pid) => {
      try {
        return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').slice(0, 60)}`;
      } catch {
        return `${pid} (exited)`;
      }
    })
    .sort();
}

/** The host side: the cgroup values above for the root and the docker parent of each hierarchy, and the host's /tmp. */
export function hostState(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of FILES) {
    const [ctl, file] = f.split('/') as [string, string];
    for (const dir of [`/sys/fs/cgroup/${ctl}`, `/sys/fs/cgroup/${ctl}/docker`]) {
      try {
        out[`${dir}/${file}`] = readFileSync(`${dir}/${file}`, 'utf8').trim();
      } catch {
        // root cgroups have no limit files
      }
    }
  }
  out.tmp = readdirSync('/tmp')
    .filter((n) => n.startsWith('vitest-chaos-disk-fill'))
    .join(' ');
  return out;
}

/**
 * Busy-loops `ms` of wall time inside the container; returns the loop's
 * iterations and the CPUs the container's cgroup used meanwhile (cpuacct).
 */
export async function busyLoop(c: StartedTestContainer, ms: number): Promise<{ iterations: number; cpus: number }> {
  const script = [
    'a=$(cat /sys/fs/cgroup/cpuacct/cpuacct.usage); t0=$(date +%s%N)',
    `n=$(node -e 'let n=0;const e=Date.now()+${ms};while(Date.now()<e)n++;console.log(n)')`,
    'b=$(cat /sys/fs/cgroup/cpuacct/cpuacct.usage); t1=$(date +%s%N)',
    'echo "$n $((b - a)) $((t1 - t0))"',
  ].join('\n');
  const { output, exitCode } = await sh(c, script);
  if (exitCode !== 0) throw new Error(`busy loop in ${c.getName()} failed: ${output}`);
  const [n, cpuNs, wallNs] = output.trim().split(' ').map(Number) as [number, number, number];
  return { iterations: n, cpus: cpuNs / wallNs };
}

/** Runs dd inside the container and returns bytes per second by dd's own clock. */
export async function dd(c: StartedTestContainer, args: string): Promise<{ bytes: number; seconds: number; rate: number }> {
  const { output, exitCode } = await sh(c, `dd ${args} 2>&1`);
  const m = /(\d+) bytes .* copied, ([\d.]+) s/.exec(output);
  if (exitCode !== 0 || !m) throw new Error(`dd ${args} in ${c.getName()} failed: ${output}`);
  const bytes = Number(m[1]);
  const seconds = Number(m[2]);
  return { bytes, seconds, rate: bytes / seconds };
}

/** Memory the container's cgroup uses now. */
export async function memoryUsage(c: StartedTestContainer): Promise<number> {
  return Number(await cgroupValue(c, 'memory/memory.usage_in_bytes'));
}
