// Signals by name or number, as this OS numbers them (process-kill and
// crash-on-syscall take either).
import { constants } from 'node:os';

const NAMES = constants.signals as Record<string, number>;

/** The signal's number, or undefined when it is no signal of this OS. */
export function signalNumber(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 1 && v <= 64 ? v : undefined;
  const name = v.trim().toUpperCase();
  return NAMES[name.startsWith('SIG') ? name : `SIG${name}`];
}

/** 'SIGKILL' for 9; the number as text when it has no name. */
export function signalName(n: number): string {
  return Object.entries(NAMES).find(([, v]) => v === n)?.[0] ?? String(n);
}
