// process-kill: sends a signal to processes of the target container, found in
// its cgroup (never outside it): its main process (pid 1 inside, as the host
// sees it), processes by name, or all. A kill cannot be taken back: revert is a
// no-op and stats say so (revertible: 0).
import { z } from 'zod';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { processStartTicks } from '../../journal/journal.js';
import type { FaultKind } from '../fault-kind.js';
import { nameMatches, processesOf, type ContainerProcess } from '../../targets/cgroup-processes.js';
import { inspectOrNull, waitUntil } from '../../targets/docker-state.js';
import { signalNumber } from '../../kernel/signals.js';
import { signal } from '../params.js';

const PROCESSES = 'one of "main", "all", or { name: "<comm or argv[0] file name>" }';

const NAME = 'a non-empty process name (comm or argv[0] file name)';
const processName = z.string({ error: NAME }).min(1, { error: NAME }).max(4096, { error: NAME });

const schema = z
  .strictObject({
    /** The signal: a name ('SIGKILL', 'SIGTERM'; SIG may be left out) or a number 1-64. Default 'SIGKILL'. */
    signal,
    /** 'main': the container's pid 1; { name }: processes whose comm or argv[0] is `name`; 'all'. Default 'main'. */
    processes: z.union([z.literal('main'), z.literal('all'), z.strictObject({ name: processName })], { error: PROCESSES }).default('main'),
    /** At most this many of the matching processes (1-100000), chosen with the fault's seed; not with 'main'. Default: all. */
    count: z
      .number({ error: 'an integer from 1 to 100000' })
      .int({ error: 'an integer from 1 to 100000' })
      .min(1, { error: 'an integer from 1 to 100000' })
      .max(100_000, { error: 'an integer from 1 to 100000' })
      .optional(),
  })
  .refine((p) => p.count === undefined || p.processes !== 'main', {
    path: ['count'],
    error: 'no count with processes "main" (there is one main process); use "all" or { name }',
  });

export type ProcessKillParams = z.input<typeof schema>;

export interface ProcessKillStats {
  /** Processes that matched `processes`, and of those, signalled and gone. */
  matched: number;
  signalled: number;
  exited: number;
  /** The container's exit code when its main process died (-1 while it runs). */
  containerExitCode: number;
  /** Always 0: a killed process stays killed. */
  revertible: number;
}

/** How long apply waits for the signalled processes to exit, and Docker to see it. */
const EXIT_WAIT_MS = 2_000;

const alive = (p: ContainerProcess) => processStartTicks(p.pid) === p.start;

export const processKill: FaultKind<'process-kill', typeof schema, ProcessKillStats> = {
  kind: 'process-kill',
  matched: (s) => s.matched,
  matchedWhat: 'processes of the target that fit `processes`',
  schema,
  // Killing in a stopped container finds nothing to kill: done, quietly.
  targetStates: ['running', 'stopped'],
  async apply(p, target, ctx) {
    const sig = signalNumber(p.signal)!;
    const found = target.state === 'stopped' ? [] : processesOf(target.cgroup.directory);
    const matching =
      p.processes === 'main'
        ? found.filter((x) => x.pid === target.pid)
        : p.processes === 'all'
          ? found
          : found.filter((x) => nameMatches(x, (p.processes as { name: string }).name));
    let victims = matching;
    if (p.count !== undefined && p.count < matching.length) {
      // Which ones: a seeded draw, so a run can be replayed.
      const rng = xoroshiro128plus(ctx.seed);
      const pool = [...matching];
      victims = [];
      while (victims.length < p.count) victims.push(...pool.splice(uniformInt(rng, 0, pool.length - 1), 1));
    }
    // The main process last: its death takes the whole pid namespace with it.
    victims.sort((a, b) => Number(a.pid === target.pid) - Number(b.pid === target.pid) || a.pid - b.pid);
    const signalled: ContainerProcess[] = [];
    for (const v of victims) {
      if (!alive(v)) continue;
      try {
        process.kill(v.pid, sig);
        signalled.push(v);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
    await waitUntil(() => signalled.every((v) => !alive(v)), EXIT_WAIT_MS);
    let containerExitCode = -1;
    if (signalled.some((v) => v.pid === target.pid)) {
      await waitUntil(async () => {
        const info = await inspectOrNull(ctx.docker, target.id);
        if (info && !info.State.Running) containerExitCode = info.State.ExitCode;
        return !info?.State.Running;
      }, EXIT_WAIT_MS);
      ctx.resolver.forget(target.id);
    }
    return {
      stats: () => ({
        matched: matching.length,
        signalled: signalled.length,
        exited: signalled.filter((v) => !alive(v)).length,
        containerExitCode,
        revertible: 0,
      }),
      revert: () => undefined, // a killed process stays killed: see docs/processes.md
    };
  },
};
