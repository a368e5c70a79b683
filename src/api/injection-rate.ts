// maxInjectionsPerMinute, per run. Workers of one Vitest run share a file of
// injection times in the control directory, named after the run's main process
// (pid and start time) and updated under a lock (an exclusive mkdir), so the
// limit holds across workers; outside the plugin (createChaos in a script) the
// run is the process. The file goes when its run ends (the plugin's close, or
// the process's exit), and a file whose run died is removed by the next run
// that counts injections, and by `vitest-chaos status | stop`.
import { mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChaosSpecError } from '../contracts/errors.js';
import { processStartTicks } from '../journal/process-start.js';
import { controlDir, ensureControlDir } from './control-channel.js';

const RATE_FILE = /^rate-(\d+)-(\d+)\.json(\.lock)?$/;

/** The name of a run's file of injection times. */
export function rateFileOf(runPid: number): string {
  return `rate-${runPid}-${processStartTicks(runPid) ?? 0}.json`;
}

/** Removes a run's file of injection times (and a lock left with it): the run has ended. */
export function removeRunRate(runPid = process.pid, dir = controlDir()): void {
  const file = rateFileOf(runPid);
  rmSync(join(dir, file), { force: true });
  rmSync(join(dir, `${file}.lock`), { recursive: true, force: true });
}

/** Removes the files of runs that are gone (their pid dead, or reused by another process); returns their names. */
export function reapDeadRates(dir = controlDir()): string[] {
  const gone: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return gone;
  }
  for (const name of names) {
    const m = RATE_FILE.exec(name);
    if (!m || processStartTicks(Number(m[1])) === Number(m[2])) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
    gone.push(name);
  }
  return gone;
}

const MINUTE = 60_000;
/** A lock older than this was left by a process that died holding it (it is held for microseconds). */
const STALE_LOCK_MS = 5_000;

export class InjectionRate {
  private readonly file: string;
  private started = false;

  constructor(
    readonly limit: number | undefined,
    readonly runPid: number,
  ) {
    this.file = rateFileOf(runPid);
  }

  /**
   * Counts `n` injections now, or throws ChaosSpecError naming the limit and the
   * count it would reach; nothing is counted then. `countOnly`: check, count nothing.
   */
  take(where: string, n = 1, opts: { countOnly?: boolean } = {}): void {
    if (this.limit === undefined) return;
    const dir = ensureControlDir();
    const path = join(dir, this.file);
    if (!this.started) {
      this.started = true;
      reapDeadRates(dir);
      // Outside the plugin the run is this process: its file goes with it.
      if (this.runPid === process.pid) process.once('exit', () => removeRunRate(this.runPid, dir));
    }
    this.locked(join(dir, `${this.file}.lock`), () => {
      const now = Date.now();
      let times: number[] = [];
      try {
        times = (JSON.parse(readFileSync(path, 'utf8')) as number[]).filter((t) => t > now - MINUTE);
      } catch {
        // no injection yet in this run
      }
      const would = times.length + n;
      if (would > (this.limit as number)) {
        throw new ChaosSpecError(where, [
          {
            field: 'maxInjectionsPerMinute',
            value: would,
            expected: `at most ${this.limit} injections in any 60 s of this run (the plugin option maxInjectionsPerMinute is ${this.limit}; this would be injection ${would} of the last minute)`,
          },
        ]);
      }
      if (opts.countOnly) return;
      for (let i = 0; i < n; i++) times.push(now);
      writeFileSync(path, JSON.stringify(times), { mode: 0o600 });
    });
  }

  private locked<T>(lock: string, fn: () => T): T {
    const deadline = Date.now() + 2 * STALE_LOCK_MS;
    for (;;) {
      try {
        mkdirSync(lock, { mode: 0o700 });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        try {
          if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) rmdirSync(lock);
        } catch {
          // released meanwhile
        }
        if (Date.now() > deadline) throw new Error(`vitest-chaos: could not take the injection-rate lock ${lock}`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
      }
    }
    try {
      return fn();
    } finally {
      rmdirSync(lock);
    }
  }
}
