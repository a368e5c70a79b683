// Keeps a container paused or stopped while at least one of our faults holds
// it. The first hold journals the undo (docker-unpause / docker-start) BEFORE
// the change, so the reaper undoes it if our process dies; the last release
// runs the undo. A container already so when the first hold came (paused or
// stopped by the test itself, or by another run) is left as it was found.
import type { JournalEntry, UndoAction } from '../journal/journal.js';
import type { Journal } from '../journal/journal.js';
import { keyedSerial } from './keyed-serial.js';

export interface HoldSpec {
  /** e.g. `paused:<container id>`: holds of the same key share one change. */
  key: string;
  description: string;
  undo: UndoAction;
  /** Asks Docker now: is the container already in the held state? */
  isHeld(): Promise<boolean>;
  /** Makes the change (pause, stop). */
  enter(): Promise<void>;
  /**
   * Undoes the change better than the journal's record can (container-stop: a start on the
   * same host ports) while we live; the record then goes. If it throws, the record's undo runs.
   */
  undoLive?(): Promise<void>;
  /** Runs after the undo, e.g. waits until the container runs again. */
  afterUndo?(): Promise<void>;
}

export interface Hold {
  /** The container was already in the state, not by a fault of ours: nothing was changed. */
  readonly foundHeld: boolean;
  /** Idempotent; the last release of a key undoes the change. */
  release(): Promise<void>;
}

interface Shared {
  count: number;
  entry: JournalEntry;
  journal: Journal;
}

const held = new Map<string, Shared>();
/** A hold and a release of one container never interleave. */
const serially = keyedSerial();

export function hold(spec: HoldSpec, journal: () => Journal): Promise<Hold> {
  return serially(spec.key, async () => {
    let shared = held.get(spec.key);
    const already = await spec.isHeld();
    if (!shared && already) return { foundHeld: true, release: async () => undefined };
    if (!shared) {
      const j = journal();
      const entry = j.record(spec.description, [spec.undo]);
      try {
        await spec.enter();
      } catch (err) {
        await j.revert(entry).catch(() => undefined); // the undo is idempotent: safe whatever enter() did
        throw err;
      }
      shared = { count: 0, entry, journal: j };
      held.set(spec.key, shared);
    } else if (!already) {
      await spec.enter(); // ours, but resumed behind our back: hold it again
    }
    shared.count++;
    const mine = shared;
    let released = false;
    return {
      foundHeld: false,
      release: () =>
        serially(spec.key, async () => {
          if (released) return;
          released = true;
          if (--mine.count > 0) return;
          held.delete(spec.key);
          let done = false;
          if (spec.undoLive) {
            try {
              await spec.undoLive();
              done = true;
            } catch {
              // the journal's own undo below
            }
          }
          if (done) mine.journal.forget(mine.entry);
          else await mine.journal.revert(mine.entry);
          await spec.afterUndo?.();
        }),
    };
  });
}
