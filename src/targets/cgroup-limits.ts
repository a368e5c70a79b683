// A cgroup limit that several faults may tighten at once (a cpu-throttle
// applied twice, two io-throttles on one disk, two Vitest processes throttling
// one container). The value in force is the tightest of the faults' values and
// of the value found before the first one; the layers of every process live in
// the journal directory (journal/limit-stack.ts), so a revert lifts only its own
// layer, the last one out restores the original, and every fault's journal
// entry restores that first value (the reaper writes what live layers still
// need instead), so entries can be reverted and reaped in any order.
import { LimitStacks, type LimitValue } from '../journal/limit-stack.js';
import { cgroupWriteUndo, type UndoAction } from '../journal/journal.js';
import { readCgroupFile, writeCgroupFile } from './cgroup-v1.js';
import type { AppliedFault } from '../contracts/applied-fault.js';
import type { JournalSource } from '../journal/journal.js';

export interface LimitFile {
  /** Unique per limit: the file, plus the device for per-device files. */
  key: string;
  /** The limit in force now; null = no limit. */
  read(): bigint | null;
  /** Puts a limit in force (null = none); false when the cgroup is gone. */
  write(v: bigint | null): boolean;
  /** The journal action that puts `v` back. */
  undo(v: bigint | null): UndoAction;
}

function limitValue(file: LimitFile, v: bigint | null): LimitValue {
  const u = file.undo(v);
  if (u.type !== 'cgroup-write') throw new Error(`the undo of limit ${file.key} is not a cgroup write`);
  return { rank: v === null ? null : String(v), path: u.path, content: u.content };
}

const rankOf = (v: LimitValue): bigint | null => (v.rank === null ? null : BigInt(v.rank));

/**
 * Tightens each limit to its value (never loosens one). Writes in list order
 * and undoes in reverse order: list a limit that must stay below another
 * (memory.limit_in_bytes before memory.memsw.limit_in_bytes) first. The files
 * come from the controls of src/targets (cpu-control, memory-control, io-control),
 * which know each cgroup version's files.
 */
export function tightenLimits(
  ctx: JournalSource,
  description: string,
  items: { file: LimitFile; value: bigint }[],
): { release(): void; originals: (bigint | null)[] } {
  const journal = ctx.journal();
  const stacks = new LimitStacks(journal.dir);
  let entry: ReturnType<typeof journal.record> | undefined;
  const undos: UndoAction[] = [];
  const originals: (bigint | null)[] = [];
  const done: { file: LimitFile; token: string }[] = [];
  const release = (): void => {
    const errors: unknown[] = [];
    for (const { file, token } of [...done].reverse()) {
      try {
        stacks.pop(file.key, token, (v) => file.write(rankOf(v)));
      } catch (err) {
        errors.push(err);
      }
    }
    done.length = 0;
    if (errors.length) throw errors[0];
    if (entry) journal.forget(entry);
  };
  try {
    for (const { file, value } of items) {
      const { token, original } = stacks.push(
        file.key,
        () => limitValue(file, file.read()),
        limitValue(file, value),
        (effective, first) => {
          // write-ahead: what puts this file back is on disk before the write
          undos.unshift(file.undo(rankOf(first)));
          if (entry) journal.update(entry, undos);
          else entry = journal.record(description, undos);
          file.write(rankOf(effective));
        },
      );
      originals.push(rankOf(original));
      done.push({ file, token });
    }
  } catch (err) {
    release();
    throw err;
  }
  return { release, originals };
}

/**
 * The applied fault of limits taken with tightenLimits(): counters sampled
 * until the revert (which takes them one last time), then the limits released.
 * `sample` returns null once the container is gone: the last counters stand.
 */
export function limitFault<St extends object>(held: { release(): void }, sample: () => St | null): AppliedFault<St> {
  // Before the first sample (a target that vanished at once) there is nothing to count.
  let last = (sample() ?? {}) as St;
  let released = false;
  const stats = (): St => {
    if (!released) last = sample() ?? last;
    return last;
  };
  return {
    stats,
    revert() {
      if (released) return;
      stats();
      released = true;
      held.release();
    },
  };
}

/** A single-value cgroup file; `none` is what the kernel shows and takes for "no limit". */
export function valueFile(path: string, none?: string): LimitFile {
  const dir = path.slice(0, path.lastIndexOf('/'));
  const file = path.slice(path.lastIndexOf('/') + 1);
  return {
    key: path,
    read() {
      const s = readCgroupFile(dir, file);
      if (s === null) throw new Error(`${path} is gone (the container stopped)`);
      return s === none ? null : BigInt(s);
    },
    write: (v) => writeCgroupFile(path, v === null ? (none as string) : String(v)),
    undo: (v) => cgroupWriteUndo(path, v === null ? (none as string) : String(v)),
  };
}
