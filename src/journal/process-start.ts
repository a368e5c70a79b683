// A process's start time (clock ticks since boot): with its pid, an identity
// that a reused pid cannot fake. Journal records and kills check it.
import { readFileSync } from 'node:fs';

export function processStartTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parens: fields start after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
  } catch {
    return null;
  }
}

/**
 * Starts the script of every process vitest-chaos places in a target or its
 * namespace (`node -e MARK...`): a kill read from a journal hits only a
 * process whose command line carries it, never another of the same start time.
 */
export const OWN_PROCESS_MARK = '/* vitest-chaos process */';
