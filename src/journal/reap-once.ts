// What a dead run left is reverted once per Chaos instance, before its first
// change, and said: reverted records as warnings, failed ones with the reason.
import type { Journal } from './journal.js';

export function reapOnce(journal: () => Journal, warn: (line: string) => void = console.warn): () => Promise<void> {
  let reaped: Promise<void> | undefined;
  return () => {
    reaped ??= (async () => {
      const { reverted, failed } = await journal().reap();
      for (const e of reverted) warn(`vitest-chaos: reverted what a dead run left: ${e.description} (pid ${e.pid})`);
      for (const f of failed) warn(`vitest-chaos: could not revert ${f.entry.description}: ${f.error}`);
    })();
    return reaped;
  };
}
