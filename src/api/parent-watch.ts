// A test worker of Vitest's forks pool is a child process of the Vitest main
// process. A CI timeout often SIGKILLs the main process alone: the worker's
// IPC channel closes, but Vitest only notices when it next sends, after the
// running test has ended (by its own timeout, minutes later), and every fault
// stays in force until then. So the worker watches its parent itself.
// Workers of the threads pool live inside the main process and die with it.
import { isMainThread } from 'node:worker_threads';

type Revert = () => Promise<unknown>;

const KEY = Symbol.for('vitest-chaos.parent-watch');
/** How long the reverts may take before the worker exits anyway. */
const REVERT_BUDGET_MS = 10_000;
/** Fallback to the IPC channel's 'disconnect': a changed ppid means we were reparented. */
const PPID_POLL_MS = 250;

interface Watch {
  reverts: Set<Revert>;
}

/**
 * Runs `revert` (with every other one registered in this process) when the
 * process that forked this worker has died, then exits. Returns a function
 * that unregisters it. Does nothing outside a forked worker.
 */
export function onParentGone(revert: Revert): () => void {
  const g = globalThis as { [KEY]?: Watch };
  if (!g[KEY]) {
    g[KEY] = { reverts: new Set() };
    if (isMainThread && typeof process.send === 'function') install(g[KEY]);
  }
  const w = g[KEY];
  w.reverts.add(revert);
  return () => w.reverts.delete(revert);
}

function install(w: Watch): void {
  const parent = process.ppid;
  let firing = false;
  const fire = async (why: string) => {
    if (firing) return;
    firing = true;
    clearInterval(poll);
    // Nothing may end the worker before the reverts are done: its stdout/stderr are pipes to
    // the dead process (EPIPE), and Vitest exits its worker on an IPC error.
    const ignore = () => undefined;
    process.stdout.on('error', ignore);
    process.stderr.on('error', ignore);
    process.removeAllListeners('error');
    process.on('error', ignore);
    process.stderr.write(`vitest-chaos: ${why}: reverting every fault and exiting\n`);
    let timer: NodeJS.Timeout | undefined;
    const budget = new Promise<void>((resolve) => (timer = setTimeout(resolve, REVERT_BUDGET_MS)));
    await Promise.race([Promise.allSettled([...w.reverts].map((r) => r())), budget]);
    clearTimeout(timer);
    exitNow(1);
  };
  process.once('disconnect', () => void fire(`the Vitest main process (pid ${parent}) is gone`));
  const poll = setInterval(() => {
    if (process.ppid !== parent) void fire(`the Vitest main process (pid ${parent}) is gone (reparented to ${process.ppid})`);
  }, PPID_POLL_MS);
  poll.unref();
}

/** Vitest replaces process.exit in its workers with one that throws; the real one is still there. */
function exitNow(code: number): never {
  const really = (process as unknown as { reallyExit?: (code: number) => never }).reallyExit;
  if (typeof really === 'function') really.call(process, code);
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}
