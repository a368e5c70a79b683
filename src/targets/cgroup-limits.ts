// A cgroup limit that several faults may tighten at once (a cpu-throttle
// applied twice, two io-throttles on one disk). The value in force is the
// tightest of the faults' values and of the value found before the first one;
// every fault's journal entry restores that first value, so entries can be
// reverted in any order here, and reaped in any order after a crash.
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

interface Held {
  original: bigint | null;
  layers: Map<symbol, bigint>;
}

const held = new Map<string, Held>();

function effective(h: Held): bigint | null {
  let v = h.original;
  for (const l of h.layers.values()) if (v === null || l < v) v = l;
  return v;
}

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
  const token = Symbol(description);
  const originals = items.map(({ file }) => (held.has(file.key) ? held.get(file.key)!.original : file.read()));
  const entry = ctx.journal().record(description, items.map(({ file }, i) => file.undo(originals[i] ?? null)).reverse());
  const done: LimitFile[] = [];
  const release = (): void => {
    const errors: unknown[] = [];
    for (const file of [...done].reverse()) {
      const h = held.get(file.key);
      if (!h?.layers.delete(token)) continue;
      if (h.layers.size === 0) held.delete(file.key);
      try {
        file.write(effective(h));
      } catch (err) {
        errors.push(err);
      }
    }
    done.length = 0;
    if (errors.length) throw errors[0];
    ctx.journal().forget(entry);
  };
  try {
    items.forEach(({ file, value }, i) => {
      let h = held.get(file.key);
      if (!h) held.set(file.key, (h = { original: originals[i] ?? null, layers: new Map() }));
      h.layers.set(token, value);
      done.push(file);
      file.write(effective(h));
    });
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
