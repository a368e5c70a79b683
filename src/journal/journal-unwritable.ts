// A journal directory that cannot take a record (read-only, full): the change
// the record was for is refused before it is made, with the directory and the reason.
/** The journal could not record a change, so the change was not made. */
export class JournalUnwritable extends Error {
  override name = 'JournalUnwritable';
}

/** The error for a record (or a limit's layer) that could not be written: the directory, the reason, nothing changed. */
export function journalUnwritable(dir: string, what: string, err: unknown): JournalUnwritable {
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'EROFS'
      ? 'is on a read-only file system'
      : code === 'ENOSPC' || code === 'EDQUOT'
        ? 'is on a full disk'
        : code === 'EACCES' || code === 'EPERM'
          ? 'cannot be written'
          : `cannot be written (${(err as Error).message})`;
  return new JournalUnwritable(
    `vitest-chaos cannot journal "${what}": the journal directory ${dir} ${why} (${code ?? 'error'}); nothing was changed. Free it or set VITEST_CHAOS_JOURNAL_DIR to a writable directory`,
  );
}
