// A process's start time (clock ticks since boot): with its pid, an identity
// that a reused pid cannot fake. Journal records and kills check it.
import { readFileSync } from 'node:fs';

/** What we read of /proc/PID/stat: the state letter, CPU time in clock ticks, the start time. */
export interface ProcessStat {
  /** R, S, D, Z, ... */
  state: string;
  /** utime + stime (clock ticks). */
  cpuTicks: number;
  /** Clock ticks after boot it started (field 22). */
  startTicks: number;
}

/** /proc/PID/stat of a process, or null when it is gone. */
export function processStat(pid: number): ProcessStat | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm may hold spaces and parens: fields start after the last ')'
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: f[0] ?? '?', cpuTicks: Number(f[11]) + Number(f[12]), startTicks: Number(f[19]) };
}

export function processStartTicks(pid: number): number | null {
  return processStat(pid)?.startTicks ?? null;
}

/**
 * Starts the script of every process vitest-chaos places in a target or its
 * namespace (`node -e MARK...`): a kill read from a journal hits only a
 * process whose command line carries it, never another of the same start time.
 */
export const OWN_PROCESS_MARK = '/* vitest-chaos process */';
