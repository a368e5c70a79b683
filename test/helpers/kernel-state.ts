// What the kernel says is attached to a cgroup: our leak check, independent of our own bookkeeping.
import { execFileSync } from 'node:child_process';

export function attachedPrograms(cgroupDir: string): string[] {
  const out = execFileSync('bpftool', ['-j', 'cgroup', 'show', cgroupDir], { encoding: 'utf8' }).trim();
  if (!out) return [];
  return (JSON.parse(out) as { name?: string }[]).map((p) => p.name ?? '?');
}
