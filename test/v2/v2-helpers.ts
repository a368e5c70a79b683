// Helpers of the cgroup v2 tests. A container's own cgroup values are read
// from inside it (Docker gives it a private cgroup namespace on v2: its cgroup
// is /sys/fs/cgroup there), independent of the code under test.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { StartedTestContainer } from 'testcontainers';
import { expect } from 'vitest';
import { sh } from '../helpers/containers.js';

/** Fails unless this is what the v2 tests are for: pure cgroup v2 and Docker's systemd driver. */
export function expectPureV2WithSystemdDriver(): void {
  expect(execFileSync('stat', ['-fc', '%T', '/sys/fs/cgroup'], { encoding: 'utf8' }).trim()).toBe('cgroup2fs');
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toMatch(/ - cgroup cgroup /);
  const info = execFileSync('docker', ['info', '--format', '{{.CgroupDriver}} {{.CgroupVersion}}'], { encoding: 'utf8' }).trim();
  expect(info).toBe('systemd 2');
}

/** A file of the container's cgroup as it sees it, e.g. "cpu.max". */
export async function v2Value(c: StartedTestContainer, file: string): Promise<string> {
  const { output, exitCode } = await sh(c, `cat /sys/fs/cgroup/${file}`);
  if (exitCode !== 0) throw new Error(`cat ${file} in ${c.getName()} failed: ${output}`);
  return output.trim();
}

/** "key value" lines of a cgroup file (cpu.stat, memory.events) as numbers. */
export async function v2Keyed(c: StartedTestContainer, file: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await v2Value(c, file)).split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

/** Every value a resource fault may change, as the container sees them. */
export async function v2Limits(c: StartedTestContainer): Promise<Record<string, string>> {
  const files = ['cpu.max', 'memory.max', 'memory.swap.max', 'io.max'];
  const { output } = await sh(c, `cd /sys/fs/cgroup; for f in ${files.join(' ')}; do echo "$f=$(cat $f 2>/dev/null | tr '\\n' ' ')"; done`);
  return Object.fromEntries(
    output
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]),
  );
}

/**
 * Busy-loops `ms` of wall time in the container: the loop's iterations, and the CPUs its
 * cgroup used meanwhile (cpu.stat). A bash arithmetic loop, not Node: no JIT whose
 * emulated compile time would make the count swing, and no start-up to pay under a quota.
 */
export async function v2BusyLoop(c: StartedTestContainer, ms: number): Promise<{ iterations: number; cpus: number }> {
  const script = [
    // the clock is read around the reads of cpu.stat, so the CPU of those reads is in both
    "t0=${EPOCHREALTIME/./}; a=$(awk '/^usage_usec/ {print $2}' /sys/fs/cgroup/cpu.stat)",
    `n=0; s=\${EPOCHREALTIME/./}; e=$((s + ${ms * 1000})); while ((\${EPOCHREALTIME/./} < e)); do n=$((n + 1)); done`,
    "b=$(awk '/^usage_usec/ {print $2}' /sys/fs/cgroup/cpu.stat); t1=${EPOCHREALTIME/./}",
    'echo "$n $((b - a)) $((t1 - t0))"',
  ].join('\n');
  const { output, exitCode } = await sh(c, script);
  if (exitCode !== 0) throw new Error(`busy loop in ${c.getName()} failed: ${output}`);
  const [n, cpuUs, wallUs] = output.trim().split(' ').map(Number) as [number, number, number];
  return { iterations: n, cpus: cpuUs / wallUs };
}

/** The processes of the container's cgroup, as "pid command line" in its own pid namespace. */
export async function v2Processes(c: StartedTestContainer): Promise<string[]> {
  const { output } = await sh(
    c,
    // a worker's command line (node -e '<script>') has newlines; a process may be gone already
    'for p in $(cat /sys/fs/cgroup/cgroup.procs); do c=$(tr "\\0\\n" "  " 2>/dev/null < /proc/$p/cmdline | cut -c1-40); [ -n "$c" ] && echo "$p $c"; done; true',
  );
  return output
    .trim()
    .split('\n')
    .filter((l) => {
      const cmd = l.slice(l.indexOf(' ') + 1).trim();
      return cmd !== '' && !/^(bash -c|cat|cut|tr)( |$)/.test(cmd); // this very listing, or gone
    })
    .sort();
}
