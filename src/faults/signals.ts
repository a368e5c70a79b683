// Signal parameters shared by process-kill and crash-on-syscall: a name
// ('SIGKILL', 'SIGTERM', or without the SIG prefix) or a number.
import { constants } from 'node:os';
import { z } from 'zod';

const EXPECTED = 'a signal name like "SIGKILL" or "SIGTERM", or a signal number from 1 to 64';
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

export const signal = z
  .union([z.string(), z.number()], { error: EXPECTED })
  .refine((v) => signalNumber(v) !== undefined, { error: EXPECTED })
  .default('SIGKILL');
