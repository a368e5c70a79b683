// crash-on-syscall: a signal (SIGKILL by default) to a process of the target
// when it enters a given syscall; percent draws with the fault's seed, and the
// first afterCount calls pass. A tp_btf/sys_enter program filters by the
// caller's cgroup id, so nothing outside the target is ever signalled. The
// call itself still runs: the process dies on its way back to user space.
import { z } from 'zod';
import type { FaultKind } from '../fault-kind.js';
import { signalNumber } from '../../kernel/signals.js';
import { percent, signal } from '../params.js';
import { drawThreshold, holdSlots, slotRng } from '../../kernel/slot-rules.js';
import { SYSCALLS_X86_64 } from '../../kernel/syscalls-x86_64.js';

const SYSCALL = 'a syscall name of x86_64 like "write", "fsync", "openat", or a number from 0 to 1023';

function syscallNumber(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 && v <= 1023 ? v : undefined;
  return Object.hasOwn(SYSCALLS_X86_64, v) ? SYSCALLS_X86_64[v] : undefined;
}

const schema = z.strictObject({
  /** An x86_64 syscall name ('write', 'fsync', 'openat', ...) or a number 0-1023. Required. */
  syscall: z
    .union([z.string(), z.number()], { error: SYSCALL })
    .refine((v) => syscallNumber(v) !== undefined, { error: SYSCALL })
    // The names and numbers are x86_64's: elsewhere they would pick another syscall.
    .refine(() => process.arch === 'x64', { error: () => `an x86_64 host (syscall numbers differ on ${process.arch})` }),
  /** The signal sent: a name ('SIGKILL', 'SIGUSR2'; SIG may be left out) or a number 1-64. Default 'SIGKILL'. */
  signal,
  /** Share of matching calls (past `afterCount`) that get the signal, 0-100, drawn with the fault's seed. Default 100. */
  percent,
  /** The first `afterCount` matching calls pass untouched. Default 0. */
  afterCount: z
    .number({ error: 'an integer from 0 to 2^53' })
    .int({ error: 'an integer from 0 to 2^53' })
    .min(0, { error: 'an integer from 0 to 2^53' })
    .max(Number.MAX_SAFE_INTEGER, { error: 'an integer from 0 to 2^53' })
    .default(0),
});

export type CrashOnSyscallParams = z.input<typeof schema>;

export interface CrashOnSyscallStats {
  /** Calls of the syscall by the target's processes, past the draw's reach or not. */
  matched: number;
  /** Of those, answered with the signal. */
  signalled: number;
}

export const crashOnSyscall: FaultKind<'crash-on-syscall', typeof schema, CrashOnSyscallStats> = {
  kind: 'crash-on-syscall',
  matched: (s) => s.matched,
  matchedWhat: "calls of the syscall by the target's processes",
  schema,
  programs: ['syscallSignal'],
  async apply(p, target, ctx) {
    const sc = ctx.kernel.syscallSignal;
    return holdSlots(
      sc,
      [{ path: target.cgroup.directory, id: target.cgroup.id }],
      (ref, _place, n) =>
        sc.enable(
          ref,
          {
            nr: syscallNumber(p.syscall)!,
            signal: signalNumber(p.signal)!,
            threshold: drawThreshold(p.percent),
            flags: p.percent >= 100 ? ctx.kernel.constant('VC_SIG_ALL') : 0,
            after_count: BigInt(p.afterCount),
          },
          { rng: slotRng(ctx.seed, n) },
        ),
      (s) => ({ matched: Number(s.matched), signalled: Number(s.signaled) }),
      { matched: 0, signalled: 0 },
    );
  },
};
