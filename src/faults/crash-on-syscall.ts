// crash-on-syscall: a signal (SIGKILL by default) to a process of the target
// when it enters a given syscall; percent draws with the fault's seed, and the
// first afterCount calls pass. A tp_btf/sys_enter program filters by the
// caller's cgroup id, so nothing outside the target is ever signalled. The
// call itself still runs: the process dies on its way back to user space.
import { z } from 'zod';
import { ChaosSpecError } from '../api/errors.js';
import type { FaultKind, FaultStats } from './fault-kind.js';
import { signal, signalNumber } from './signals.js';
import { SYSCALLS_X86_64 } from './syscalls-x86_64.js';

const SYSCALL = 'a syscall name of x86_64 like "write", "fsync", "openat", or a number from 0 to 1023';
const U32 = 0x1_0000_0000;

function syscallNumber(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 && v <= 1023 ? v : undefined;
  return Object.hasOwn(SYSCALLS_X86_64, v) ? SYSCALLS_X86_64[v] : undefined;
}

const schema = z.strictObject({
  syscall: z
    .union([z.string(), z.number()], { error: SYSCALL })
    .refine((v) => syscallNumber(v) !== undefined, { error: SYSCALL }),
  signal,
  percent: z
    .number({ error: 'a number from 0 to 100' })
    .min(0, { error: 'a number from 0 to 100' })
    .max(100, { error: 'a number from 0 to 100' })
    .default(100),
  afterCount: z
    .number({ error: 'an integer from 0 to 2^53' })
    .int({ error: 'an integer from 0 to 2^53' })
    .min(0, { error: 'an integer from 0 to 2^53' })
    .max(Number.MAX_SAFE_INTEGER, { error: 'an integer from 0 to 2^53' })
    .default(0),
});

export type CrashOnSyscallParams = z.input<typeof schema>;

export const crashOnSyscall: FaultKind<z.output<typeof schema>> = {
  kind: 'crash-on-syscall',
  schema,
  async apply(p, target, ctx) {
    if (process.arch !== 'x64') {
      throw new ChaosSpecError('chaos.inject(crash-on-syscall)', [
        { field: 'syscall', value: p.syscall, expected: `an x86_64 host (syscall numbers differ on ${process.arch})` },
      ]);
    }
    const sc = ctx.kernel.syscalls;
    const ref = sc.acquire(target.cgroup.directory, target.cgroup.id);
    try {
      sc.enable(
        ref,
        {
          nr: syscallNumber(p.syscall)!,
          signal: signalNumber(p.signal)!,
          threshold: Math.min(U32 - 1, Math.round((p.percent / 100) * U32)),
          flags: p.percent >= 100 ? ctx.kernel.constant('VC_SYS_SIGNAL_ALL') : 0,
          after_count: BigInt(p.afterCount),
        },
        // Non-zero PRNG state from the fault's seed, as for packet loss.
        { rng: BigInt.asUintN(64, BigInt(ctx.seed) * 0x9e3779b97f4a7c15n + 1n) || 1n },
      );
    } catch (err) {
      sc.release(ref);
      throw err;
    }
    let final: FaultStats | undefined;
    const read = (): FaultStats => {
      const s = sc.readStats(ref);
      return s ? { matched: Number(s.matched), signalled: Number(s.signaled) } : { matched: 0, signalled: 0 };
    };
    return {
      stats: () => final ?? read(),
      revert() {
        if (final) return;
        const last = sc.release(ref);
        final = last ? { matched: Number(last.matched), signalled: Number(last.signaled) } : read();
      },
    };
  },
};
