// Write-ahead record of every change that does not undo itself when our
// process dies (cgroup values, paused containers, burner processes, files in a
// container, qdiscs). An entry is on disk (fsynced) BEFORE the change is made,
// the revert runs its undo actions and deletes it, and the reaper runs the undo
// actions of entries whose process is gone. Undo actions are idempotent.
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { journalDirProblem, recordFileProblem } from './journal-access.js';
import { journalUnwritable } from './journal-unwritable.js';
import { LimitStacks } from './limit-stack.js';

export { JournalUnwritable } from './journal-unwritable.js';
import { processStartTicks } from './process-start.js';
import { assertUndoShape, runUndo, UndoRefused, type UndoAction } from './undo.js';

export { cgroupWriteUndo, OUR_QDISC_HANDLE, type UndoAction, UndoRefused } from './undo.js';
export { OWN_PROCESS_MARK } from './process-start.js';

export interface JournalEntry {
  /** Unique per process: `${pid}-${n}`. */
  id: string;
  pid: number;
  /** Start time of the process in clock ticks (/proc/PID/stat field 22): a reused pid is not us. */
  pidStart: number;
  createdAt: string;
  /** Order of the records of one process (1, 2, ...): the reaper undoes the newest first. */
  seq?: number;
  /** What made the change, for the reaper's report, e.g. "cpu-throttle on api-1". */
  description: string;
  /** Run in order on revert and by the reaper. */
  undo: UndoAction[];
}

/** The envelope of a record on disk; its undo actions are checked one by one (undo-schema.ts). */
const recordSchema = z.looseObject({
  id: z.string().regex(/^\d{1,10}-\d{1,10}-\d{1,16}$/),
  pid: z.number().int().min(1),
  pidStart: z.number().int().min(0),
  createdAt: z.string().max(64),
  description: z.string().max(2000),
  undo: z.array(z.unknown()).max(64),
});

/** A record the reaper would not run: kept on disk, reported with the reason. */
export interface RefusedRecord {
  file: string;
  description?: string;
  pid?: number;
  reason: string;
}

export const DEFAULT_JOURNAL_DIR = '/var/lib/vitest-chaos/journal';

export { processStartTicks, processStat } from './process-start.js';

/** What the code below the fault kinds needs of their context to journal a change. */
export interface JournalSource {
  journal(): Journal;
}

export class Journal {
  private n = 0;
  private readonly myStart: number;

  constructor(readonly dir: string = process.env.VITEST_CHAOS_JOURNAL_DIR ?? DEFAULT_JOURNAL_DIR) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.myStart = processStartTicks(process.pid) ?? 0;
  }

  private safe = false;

  /** Records the undo of a change about to be made; returns the entry to pass to commit(). */
  record(description: string, undo: UndoAction[]): JournalEntry {
    this.assertSafe();
    assertUndoShape(undo);
    const seq = ++this.n;
    const entry: JournalEntry = {
      id: `${process.pid}-${seq}-${Date.now()}`,
      pid: process.pid,
      pidStart: this.myStart,
      createdAt: new Date().toISOString(),
      seq,
      description,
      undo,
    };
    this.write(entry);
    return entry;
  }

  /** Replaces the undo list of an entry (e.g. once burner pids are known). */
  update(entry: JournalEntry, undo: UndoAction[]): void {
    assertUndoShape(undo);
    entry.undo = undo;
    this.write(entry);
  }

  /** Runs the entry's undo actions, then forgets it. Idempotent. */
  async revert(entry: JournalEntry): Promise<void> {
    await runUndo(entry.undo);
    this.forget(entry);
  }

  /** The change was not made after all (apply failed before it): drop the record. */
  forget(entry: JournalEntry): void {
    rmSync(this.path(entry.id), { force: true });
  }

  /** The records on disk that pass every check (the owner's and the schema's); the others are in `refused`. */
  entries(): JournalEntry[] {
    return this.read().entries;
  }

  private read(): { entries: JournalEntry[]; refused: RefusedRecord[] } {
    const problem = journalDirProblem(this.dir);
    if (problem) return { entries: [], refused: [{ file: this.dir, reason: `${problem}; nothing in it was run` }] };
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((f) => f.endsWith('.json'));
    } catch {
      return { entries: [], refused: [] };
    }
    const entries: JournalEntry[] = [];
    const refused: RefusedRecord[] = [];
    for (const name of names) {
      const file = join(this.dir, name);
      let text: string;
      try {
        // O_NOFOLLOW: a link planted in place of a record is refused, never followed
        const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
        try {
          const bad = recordFileProblem(file, fstatSync(fd));
          if (bad) {
            refused.push({ file, reason: bad });
            continue;
          }
          text = readFileSync(fd, 'utf8');
        } finally {
          closeSync(fd);
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue; // reverted meanwhile by its owner
        refused.push({ file, reason: code === 'ELOOP' ? `${file} is a symbolic link; remove it` : (err as Error).message });
        continue;
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        refused.push({ file, reason: `${file} is not JSON` });
        continue;
      }
      const parsed = recordSchema.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        refused.push({ file, reason: `not a journal record: ${issue?.path.join('.') || 'record'}: ${issue?.message}` });
        continue;
      }
      if (`${parsed.data.id}.json` !== name) {
        refused.push({ file, description: parsed.data.description, reason: `its id ${parsed.data.id} does not match its file name` });
        continue;
      }
      entries.push(parsed.data as JournalEntry);
    }
    return { entries, refused };
  }

  /**
   * Reverts what dead processes left, newest first: a later change may stand
   * in the way of undoing an earlier one (a paused container refuses the exec
   * that removes a file written before the pause). Returns what it reverted;
   * an entry whose undo fails stays, to be tried again, and its error is reported.
   * A record that fails its checks (an unsafe directory or file, an action
   * outside the vocabulary, a container no run of ours started) is never run,
   * stays, and is reported in `refused` with the reason.
   */
  async reap(): Promise<{ reverted: JournalEntry[]; failed: { entry: JournalEntry; error: string }[]; refused: RefusedRecord[] }> {
    const reverted: JournalEntry[] = [];
    const failed: { entry: JournalEntry; error: string }[] = [];
    const { entries, refused } = this.read();
    for (const e of newestFirst(entries)) {
      if (processStartTicks(e.pid) === e.pidStart) continue; // its owner still runs
      try {
        await runUndo(e.undo, { fromDisk: true, limits: new LimitStacks(this.dir) });
        this.forget(e);
        reverted.push(e);
      } catch (err) {
        if (err instanceof UndoRefused)
          refused.push({ file: this.path(e.id), description: e.description, pid: e.pid, reason: err.message });
        else failed.push({ entry: e, error: (err as Error).message });
      }
    }
    return { reverted, failed, refused };
  }

  /** Refuses to journal into a directory the reaper would refuse: the records would never be run. */
  private assertSafe(): void {
    if (this.safe) return;
    const problem = journalDirProblem(this.dir);
    if (problem) throw new Error(`vitest-chaos cannot journal its changes: ${problem}`);
    this.safe = true;
  }

  private path(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  /**
   * Writes a record durably, or throws naming the directory and the reason
   * (read-only, full) with nothing of the record left: the change it would
   * have recorded is then never made.
   */
  private write(entry: JournalEntry): void {
    const final = this.path(entry.id);
    const tmp = `${final}.tmp`;
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, JSON.stringify(entry, null, 2));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, final);
      const dfd = openSync(this.dir, 'r');
      try {
        fsyncSync(dfd);
      } finally {
        closeSync(dfd);
      }
    } catch (err) {
      try {
        rmSync(tmp, { force: true });
      } catch {
        // a read-only directory never got it
      }
      throw journalUnwritable(this.dir, entry.description, err);
    }
  }
}

/** Newest record first: by creation time, then by the process's own sequence (records of one millisecond). */
export function newestFirst(entries: JournalEntry[]): JournalEntry[] {
  const seqOf = (e: JournalEntry) => e.seq ?? Number(e.id.split('-')[1] ?? 0);
  return [...entries].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || (a.pid === b.pid ? seqOf(b) - seqOf(a) : 0));
}
