// The processes of a container, found through its cgroup v2 directory (and the
// directories below it), so nothing outside the container can ever match.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { processStartTicks } from '../journal/journal.js';

export interface ContainerProcess {
  pid: number;
  /** Start time in clock ticks: a pid reused by another process is not this one. */
  start: number;
  comm: string;
  argv: string[];
}

function pidsUnder(dir: string, out: number[]): void {
  let text = '';
  try {
    text = readFileSync(join(dir, 'cgroup.procs'), 'utf8');
  } catch {
    return; // the cgroup went away with its container
  }
  for (const line of text.split('\n')) if (line) out.push(Number(line));
  let children: string[] = [];
  try {
    children = readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return;
  }
  for (const c of children) pidsUnder(join(dir, c), out);
}

/** Every process in the cgroup tree now, ordered by pid. */
export function processesOf(cgroupDir: string): ContainerProcess[] {
  const pids: number[] = [];
  pidsUnder(cgroupDir, pids);
  const out: ContainerProcess[] = [];
  for (const pid of pids.sort((a, b) => a - b)) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const start = processStartTicks(pid);
      if (start !== null) out.push({ pid, start, comm, argv });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** comm (the kernel keeps 15 characters) or the file name of argv[0], exactly. */
export function nameMatches(p: ContainerProcess, name: string): boolean {
  return p.comm === name || p.comm === name.slice(0, 15) || (p.argv[0] !== undefined && basename(p.argv[0]) === name);
}
