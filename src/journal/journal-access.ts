// Who could have written the journal. Its records are run as root by the next
// run's reaper, so a directory (or a record) that another user owns or may
// write is refused, with the command that makes it safe. The same rule as
// OpenSSH's StrictModes: the directory and every directory above it belong to
// root or to us, and none is writable by others unless sticky (/tmp).
import { lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';

const myUid = (): number => process.getuid?.() ?? 0;

function mode(st: Stats): string {
  return `0${(st.mode & 0o7777).toString(8)}`;
}

/** Why the journal directory cannot be trusted (with how to fix it), or null. A missing directory is fine. */
export function journalDirProblem(dir: string): string | null {
  const uid = myUid();
  let st: Stats;
  try {
    st = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return `the journal directory ${dir} cannot be read (${(err as Error).message})`;
  }
  if (st.isSymbolicLink()) {
    return `the journal directory ${dir} is a symbolic link; point VITEST_CHAOS_JOURNAL_DIR at the real directory (${safeRealpath(dir)}) instead`;
  }
  if (!st.isDirectory()) return `the journal directory ${dir} is not a directory; remove it or set VITEST_CHAOS_JOURNAL_DIR to a directory`;
  if (st.uid !== uid) {
    return `the journal directory ${dir} belongs to uid ${st.uid}, not to uid ${uid} that runs vitest-chaos: run \`chown ${uid} ${dir} && chmod 700 ${dir}\` if its records are yours, or use another directory`;
  }
  if (st.mode & 0o022) {
    return `the journal directory ${dir} is writable by ${who(st.mode)} (mode ${mode(st)}): run \`chmod 700 ${dir}\` after checking that every record in it is yours`;
  }
  for (let p = dirname(safeRealpath(dir)); ; p = dirname(p)) {
    let a: Stats;
    try {
      a = statSync(p);
    } catch {
      break;
    }
    if (a.uid !== 0 && a.uid !== uid) {
      return `${p}, above the journal directory ${dir}, belongs to uid ${a.uid}, who could replace the journal: run \`chown ${uid} ${p}\` or use another directory`;
    }
    if (a.mode & 0o022 && !(a.mode & 0o1000)) {
      return `${p}, above the journal directory ${dir}, is writable by ${who(a.mode)} (mode ${mode(a)}) without the sticky bit, so the journal could be replaced: run \`chmod go-w ${p}\` or use another directory`;
    }
    if (p === '/') break;
  }
  return null;
}

/** Why a record file cannot be trusted, or null. */
export function recordFileProblem(path: string, st: Stats): string | null {
  const uid = myUid();
  if (!st.isFile()) return `${path} is not a regular file (a link or a device); remove it`;
  if (st.uid !== uid) return `${path} belongs to uid ${st.uid}, not to uid ${uid}: remove it, or \`chown ${uid} ${path}\` if it is yours`;
  if (st.mode & 0o022) return `${path} is writable by ${who(st.mode)} (mode ${mode(st)}): \`chmod 600 ${path}\` if it is yours`;
  return null;
}

function who(m: number): string {
  return m & 0o020 && m & 0o002 ? 'group and others' : m & 0o020 ? 'its group' : 'others';
}

function safeRealpath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}
