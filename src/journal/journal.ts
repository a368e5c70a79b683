// Write-ahead record of every change that does not undo itself when our
// process dies (cgroup values, paused containers, burner processes, files in a
// container, qdiscs). An entry is on disk (fsynced) BEFORE the change is made,
// the revert runs its undo actions and deletes it, and the reaper runs the undo
// actions of entries whose process is gone. Undo actions are idempotent.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { processStartTicks } from './process-start.js';
import { runUndo, type UndoAction } from './undo.js';

export type { UndoAction } from './undo.js';

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

export const DEFAULT_JOURNAL_DIR = '/var/lib/vitest-chaos/journal';

export { processStartTicks } from './process-start.js';

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

  /** Records the undo of a change about to be made; returns the entry to pass to commit(). */
  record(description: string, undo: UndoAction[]): JournalEntry {
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

  entries(): JournalEntry[] {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
    const out: JournalEntry[] = [];
    for (const name of names) {
      try {
        out.push(JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as JournalEntry);
      } catch {
        // a torn write never happened: entries are renamed into place
      }
    }
    return out;
  }

  /**
   * Reverts what dead processes left, newest first: a later change may stand
   * in the way of undoing an earlier one (a paused container refuses the exec
   * that removes a file written before the pause). Returns what it reverted;
   * an entry whose undo fails stays, to be tried again, and its error is reported.
   */
  async reap(): Promise<{ reverted: JournalEntry[]; failed: { entry: JournalEntry; error: string }[] }> {
    const reverted: JournalEntry[] = [];
    const failed: { entry: JournalEntry; error: string }[] = [];
    for (const e of newestFirst(this.entries())) {
      if (processStartTicks(e.pid) === e.pidStart) continue; // its owner still runs
      try {
        await runUndo(e.undo);
        this.forget(e);
        reverted.push(e);
      } catch (err) {
        failed.push({ entry: e, error: (err as Error).message });
      }
    }
    return { reverted, failed };
  }

  private path(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  private write(entry: JournalEntry): void {
    const final = this.path(entry.id);
    const tmp = `${final}.tmp`;
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
  }
}

/** Newest record first: by creation time, then by the process's own sequence (records of one millisecond). */
export function newestFirst(entries: JournalEntry[]): JournalEntry[] {
  const seqOf = (e: JournalEntry) => e.seq ?? Number(e.id.split('-')[1] ?? 0);
  return [...entries].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || (a.pid === b.pid ? seqOf(b) - seqOf(a) : 0));
}
