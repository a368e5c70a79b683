// The layers that faults of every process on this machine hold on one cgroup
// limit, kept beside the journal so that two runs tightening the same file
// (two cpu-throttles from two Vitest processes) coordinate: each write puts in
// force the tightest of the live layers and of the value found before the
// first, and the last layer out restores that value. Without it the second run
// took the first's limit for the original, and the first revert lifted the
// second's limit while the second revert left the first's behind.
//
// One JSON file per limit in <journal dir>/limits/, changed only under its lock
// file (O_EXCL; a lock whose owner died is broken). A layer whose process is
// gone (pid and start time) no longer counts; the reaper, undoing a dead run's
// cgroup-write, writes what the live layers still need instead of the original.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { recordFileProblem } from './journal-access.js';
import { journalUnwritable } from './journal-unwritable.js';
import { processStartTicks } from './process-start.js';

/** A value of a limit: its rank (null = no limit; a smaller rank is tighter) and what to write for it. */
export interface LimitValue {
  rank: string | null;
  /** The path written (the same for every value of one limit). */
  path: string;
  content: string;
}

interface Layer {
  pid: number;
  pidStart: number;
  token: string;
  value: LimitValue;
}

interface StackFile {
  key: string;
  original: LimitValue;
  layers: Layer[];
}

const LOCK_WAIT_MS = 10_000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

const myStart = (): number => processStartTicks(process.pid) ?? 0;
const alive = (l: { pid: number; pidStart: number }) => processStartTicks(l.pid) === l.pidStart;

function tighter(a: LimitValue, b: LimitValue): boolean {
  if (a.rank === null) return false;
  if (b.rank === null) return true;
  return BigInt(a.rank) < BigInt(b.rank);
}

/** The value in force: the tightest of the original and the layers. */
export function effectiveValue(original: LimitValue, layers: { value: LimitValue }[]): LimitValue {
  let v = original;
  for (const l of layers) if (tighter(l.value, v)) v = l.value;
  return v;
}

export class LimitStacks {
  readonly dir: string;
  private n = 0;

  constructor(journalDir: string) {
    this.dir = join(journalDir, 'limits');
  }

  /**
   * Adds a layer to the limit `key` and returns what to write now and the
   * original (read with `readOriginal` when no live layer holds the limit).
   * `write` runs under the lock; when it throws, the layer is not added.
   */
  push(
    key: string,
    readOriginal: () => LimitValue,
    value: LimitValue,
    write: (effective: LimitValue, original: LimitValue) => void,
  ): { token: string; original: LimitValue } {
    return this.locked(key, (stack) => {
      const original = stack?.layers.length ? stack.original : readOriginal();
      const token = `${process.pid}-${++this.n}-${Date.now()}`;
      const layers = [...(stack?.layers ?? []), { pid: process.pid, pidStart: myStart(), token, value }];
      return {
        result: { token, original },
        next: { key, original, layers },
        effect: () => write(effectiveValue(original, layers), original),
      };
    });
  }

  /** Removes a layer; `write` gets what the remaining live layers need (the original when none). */
  pop(key: string, token: string, write: (effective: LimitValue) => void): void {
    this.locked(key, (stack) => {
      if (!stack) return { result: undefined, next: null };
      const layers = stack.layers.filter((l) => l.token !== token);
      const effect = layers.length !== stack.layers.length ? () => write(effectiveValue(stack.original, layers)) : undefined;
      return { result: undefined, next: layers.length ? { ...stack, layers } : null, effect };
    });
  }

  /**
   * For the reaper: a dead run's record restores `path` to `content` (the
   * original it found). When live layers of other processes still hold that
   * limit, returns what they need instead; the dead layers are dropped.
   */
  restoreFor(path: string, content: string): string {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((f) => f.endsWith('.json'));
    } catch {
      return content;
    }
    for (const name of names) {
      const stack = this.readStack(join(this.dir, name));
      if (!stack || stack.original.path !== path || stack.original.content !== content) continue;
      return this.locked(stack.key, (s) => {
        if (!s) return { result: content, next: null };
        return { result: effectiveValue(s.original, s.layers).content, next: s.layers.length ? s : null };
      });
    }
    return content;
  }

  private fileOf(key: string): string {
    return join(this.dir, `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`);
  }

  /**
   * Runs fn on the limit's stack under its lock: the stack fn returns is put on
   * disk first, then its effect (the cgroup write) runs; an effect that throws
   * puts the stack back as it was.
   */
  private locked<T>(key: string, fn: (stack: StackFile | null) => { result: T; next: StackFile | null; effect?: () => void }): T {
    const file = this.fileOf(key);
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw journalUnwritable(this.dir, key, err);
    }
    const lock = `${file}.lock`;
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        const fd = openSync(lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
        try {
          writeSync(fd, `${process.pid} ${myStart()}`);
        } catch (err) {
          rmSync(lock, { force: true });
          throw journalUnwritable(this.dir, key, err);
        } finally {
          closeSync(fd);
        }
        break;
      } catch (err) {
        if (err instanceof Error && err.name === 'JournalUnwritable') throw err;
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw journalUnwritable(this.dir, key, err);
        if (this.lockOwnerDead(lock)) {
          rmSync(lock, { force: true });
          continue;
        }
        if (Date.now() > deadline)
          throw new Error(`vitest-chaos: the limit lock ${lock} is held by a live process for over ${LOCK_WAIT_MS} ms`);
        Atomics.wait(sleeper, 0, 0, 1);
      }
    }
    try {
      const found = this.readStack(file);
      const stack = found && found.key === key ? { ...found, layers: found.layers.filter(alive) } : null;
      const { result, next, effect } = fn(stack);
      const put = (s: StackFile | null) => {
        try {
          if (s) this.writeStack(file, s);
          else rmSync(file, { force: true });
        } catch (err) {
          throw journalUnwritable(this.dir, key, err);
        }
      };
      put(next);
      try {
        effect?.();
      } catch (err) {
        put(found);
        throw err;
      }
      return result;
    } finally {
      rmSync(lock, { force: true });
    }
  }

  private lockOwnerDead(lock: string): boolean {
    try {
      const [pid, start] = readFileSync(lock, 'utf8').trim().split(' ').map(Number);
      // A lock just created and not yet written: its owner is alive
      if (!pid) return false;
      return processStartTicks(pid) !== start;
    } catch {
      return false;
    }
  }

  private readStack(file: string): StackFile | null {
    try {
      const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        if (recordFileProblem(file, fstatSync(fd))) return null; // not ours: never trusted
        const s = JSON.parse(readFileSync(fd, 'utf8')) as StackFile;
        if (typeof s?.key !== 'string' || !Array.isArray(s.layers) || typeof s.original?.content !== 'string') return null;
        return s;
      } finally {
        closeSync(fd);
      }
    } catch {
      return null;
    }
  }

  private writeStack(file: string, s: StackFile): void {
    const tmp = `${file}.tmp`;
    // No fsync: cgroup values do not outlive the machine, and a dead process's writes are in the page cache
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, JSON.stringify(s));
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, file);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
  }
}
