// What the kernel says is attached to a cgroup: our leak check, independent of our own bookkeeping.
import { execFileSync } from 'node:child_process';
import { releaseIdleLinks } from '../../src/kernel/slotted-programs.js';

/**
 * The programs attached to a cgroup (bpftool). The links this process keeps on a
 * cgroup with no fault in force are detached first, as at the end of a test file:
 * they are no fault's leftover (attachedProgramsNow sees them).
 */
export function attachedPrograms(cgroupDir: string): string[] {
  releaseIdleLinks();
  return attachedProgramsNow(cgroupDir);
}

/** The programs attached to a cgroup now, kept links of a cgroup with no fault included. */
export function attachedProgramsNow(cgroupDir: string): string[] {
  const out = execFileSync('bpftool', ['-j', 'cgroup', 'show', cgroupDir], { encoding: 'utf8' }).trim();
  if (!out) return [];
  return (JSON.parse(out) as { name?: string }[]).map((p) => p.name ?? '?');
}
