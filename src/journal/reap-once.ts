// What a dead run left is reverted once per Chaos instance, before its first
// change, and said: reverted records as warnings, failed ones with the reason,
// refused ones (never run: see SECURITY.md) with the reason and what to do.
import type { Journal } from './journal.js';

export function reapOnce(journal: () => Journal, warn: (line: string) => void = console.warn): () => Promise<void> {
  let reaped: Promise<void> | undefined;
  return () => {
    reaped ??= (async () => {
      const { reverted, failed, refused } = await journal().reap();
      for (const e of reverted) warn(`vitest-chaos: reverted what a dead run left: ${e.description} (pid ${e.pid})`);
      for (const f of failed) warn(`vitest-chaos: could not revert ${f.entry.description}: ${f.error}`);
      for (const r of refused) {
        const what = r.description ? ` (${r.description}, pid ${r.pid})` : '';
        warn(
          `vitest-chaos: refused the journal record ${r.file}${what}, which was NOT run and is kept: ${r.reason}. Undo by hand what it names if it is yours, then delete it.`,
        );
      }
    })();
    return reaped;
  };
}
