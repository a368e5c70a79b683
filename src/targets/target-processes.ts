// Processes we run inside a target (CPU burners, memory hogs). Each is the
// host's Node started in the target's pid namespace (nsenter), so it dies with
// the container, then moved into every cgroup of the target (each v1 hierarchy
// and the v2 directory), so it competes with the target for CPU and memory and
// is charged to it. It says its host pid and waits for "go": its pid and start
// time are journaled before it does anything. It exits when its stdin closes
// (our process died); the reaper kills it by pid and start time if it did not.
// nsenter waits for it outside the container; when the process is stopped
// (SIGSTOP), nsenter stops itself too, and a stopped nsenter cannot reap: the
// zombie would keep the container from ever exiting. So the undo continues it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { OWN_PROCESS_MARK, processStartTicks, processStat, type JournalEntry } from '../journal/journal.js';
import { cgroupV1Dirs, moveToCgroups } from './cgroup-v1.js';
import type { ResolvedTarget } from './resolve-target.js';
import type { JournalSource } from '../journal/journal.js';

// Our /proc is the host's (we enter no mount namespace), so /proc/self is the host pid.
const PRELUDE = `${OWN_PROCESS_MARK}
process.stdout.write('PID ' + require('fs').readlinkSync('/proc/self') + '\\n');
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
const go = new Promise((resolve) => process.stdin.on('data', (d) => String(d).includes('go') && resolve()));
`;

const USER_HZ = 100; // /proc tick unit on every Linux architecture
const START_TIMEOUT_MS = 15_000;

export interface TargetProcesses {
  readonly pids: { pid: number; start: number }[];
  /** User + system CPU time the processes used so far (10 ms resolution). */
  cpuTimeMs(): number;
  /** How many still run. */
  running(): number;
  /** How many were killed by a signal we did not send (the OOM killer). */
  killed(): number;
  /** Resolves when every one of them has exited (for whatever reason). */
  exited: Promise<void>;
  /** Kills them (idempotent) and waits until they are gone. */
  stop(): Promise<void>;
}

export interface StartOptions {
  description: string;
  /** CommonJS run after the prelude; `await go` before working; argv from process.argv[1]. */
  script: string;
  /** One process per element: its arguments. */
  argv: string[][];
  /** Every stdout line after the pid line. */
  onLine?(index: number, line: string): void;
}

export async function startInTarget(target: ResolvedTarget, ctx: JournalSource, opts: StartOptions): Promise<TargetProcesses> {
  const children: ChildProcess[] = [];
  const exits: Promise<NodeJS.Signals | null>[] = [];
  let stopping = false;
  let killed = 0;
  const pids: { pid: number; start: number }[] = [];
  const waiters: { pid: number; start: number }[] = [];
  const ticks = new Map<number, number>();
  let entry: JournalEntry | undefined;

  const stop = async (): Promise<void> => {
    stopping = true;
    if (entry) await ctx.journal().revert(entry);
    for (const c of children) c.stdin?.end(); // the ones that never got "go" exit on EOF
    // nsenter reaps its process and exits. Never killed: its process would become a
    // zombie of the container's init, which may never reap it. A process that cannot
    // die yet (its container is paused) is left to nsenter, without holding us.
    const exited = await Promise.race([Promise.all(exits).then(() => true), new Promise((r) => setTimeout(r, 5000).unref())]);
    if (exited !== true) {
      for (const c of children) {
        c.stdout?.destroy();
        c.stderr?.destroy();
        c.unref();
      }
    }
  };

  try {
    const hostPids = await Promise.all(
      opts.argv.map((args, i) => {
        const child = spawn(
          'nsenter',
          ['--target', String(target.pid), '--pid', '--', process.execPath, '-e', PRELUDE + opts.script, ...args],
          {
            stdio: ['pipe', 'pipe', 'pipe'],
            env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
          },
        );
        children.push(child);
        let stderr = '';
        child.stderr!.on('data', (d) => (stderr = (stderr + String(d)).slice(-2000)));
        exits.push(
          new Promise((resolve) =>
            child.once('close', (_code, signal) => {
              // nsenter dies by the signal that killed the process it waits for
              if (signal === 'SIGKILL' && !stopping) killed++;
              resolve(signal);
            }),
          ),
        );
        return new Promise<number>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`a process in ${target.name} did not start within ${START_TIMEOUT_MS} ms`)),
            START_TIMEOUT_MS,
          ).unref();
          child.once('error', (err) =>
            reject(new Error(`cannot run nsenter (util-linux) to start a process in ${target.name}: ${err.message}`)),
          );
          child.once('close', (code) =>
            reject(new Error(`a process in ${target.name} exited (${code}) before it started: ${stderr.trim()}`)),
          );
          createInterface({ input: child.stdout! }).on('line', (line) => {
            const m = /^PID (\d+)$/.exec(line);
            if (m) {
              clearTimeout(timer);
              resolve(Number(m[1]));
            } else opts.onLine?.(i, line);
          });
        });
      }),
    );
    hostPids.forEach((pid, i) => {
      const start = processStartTicks(pid);
      const waiter = children[i]!.pid!;
      const waiterStart = processStartTicks(waiter);
      if (start === null || waiterStart === null) throw new Error(`process ${pid} in ${target.name} exited before it started`);
      pids.push({ pid, start });
      waiters.push({ pid: waiter, start: waiterStart });
    });
    entry = ctx.journal().record(opts.description, [
      { type: 'kill', pids },
      { type: 'kill', pids: waiters, signal: 'SIGCONT' },
    ]);
    const dirs = [...cgroupV1Dirs(target.pid), target.cgroup.directory];
    for (const { pid } of pids) moveToCgroups(pid, dirs);
    for (const c of children) c.stdin!.write('go\n');
  } catch (err) {
    await stop();
    throw err;
  }

  const readTicks = (): void => {
    for (const { pid, start } of pids) {
      const s = processStat(pid);
      if (s?.startTicks === start) ticks.set(pid, s.cpuTicks); // else exited: keep its last reading
    }
  };

  return {
    pids,
    cpuTimeMs() {
      if (!stopping) readTicks();
      let sum = 0;
      for (const t of ticks.values()) sum += t;
      return (sum * 1000) / USER_HZ;
    },
    running: () => pids.filter((p) => alive(p.pid, p.start)).length,
    killed: () => killed,
    exited: Promise.all(exits).then(() => undefined),
    async stop() {
      if (!stopping) readTicks();
      await stop();
    },
  };
}

/** Still the same process, and not a zombie. */
function alive(pid: number, start: number): boolean {
  const s = processStat(pid);
  return s !== null && s.startTicks === start && s.state !== 'Z';
}
