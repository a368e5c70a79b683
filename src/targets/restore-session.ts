// One long-lived `iptables-restore --noflush` (or ip6tables-restore) per
// network namespace and family, fed transactions on its stdin: an inject or a
// revert of the packet path then costs a write and the kernel's commit, not
// two process starts (nsenter, iptables-restore) and a ruleset read each time.
// Each transaction is followed by `-S OUTPUT` in the mangle table: the listing
// on stdout (unbuffered through stdbuf) says the transaction before it was
// committed. A transaction that fails makes the child exit (nothing of that
// transaction is applied: iptables-restore commits a table block at once);
// it and those queued behind it are then run the old way, one process each,
// which reads the kernel afresh. The child leaves when it has been idle for
// IDLE_MS or when this process ends (its stdin closes, even on SIGKILL): it
// holds nothing but its own network namespace reference meanwhile. What is
// made here is journaled by the callers before it is made, as before.
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export type RestoreFamily = 4 | 6;

const IDLE_MS = 2000;
const ACK = '*mangle\n-S OUTPUT\nCOMMIT\n';
const ACK_LINE = /^-P OUTPUT \S+\n/m;

const restoreCmd = (family: RestoreFamily) => (family === 6 ? 'ip6tables-restore' : 'iptables-restore');

/** One process for this transaction: nsenter, then iptables-restore --noflush. */
export function restoreOnce(netns: string, family: RestoreFamily, text: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const cmd = restoreCmd(family);
    const child = execFile('nsenter', [`--net=${netns}`, '--', cmd, '-w', '5', '--noflush'], (err, _out, stderr) =>
      err ? reject(new Error(`${cmd} in ${netns} failed: ${String(stderr).trim() || err.message}`)) : resolve(),
    );
    // A child that exits at once (its netns gone) closes its stdin under the write: the exit says why.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(text);
  });
}

interface Waiting {
  resolve(): void;
  reject(err: Error): void;
}

class Session {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: Waiting[] = [];
  private out = '';
  private err = '';
  private idle: NodeJS.Timeout | undefined;
  dead = false;

  get pid(): number | undefined {
    return this.child.pid;
  }

  constructor(
    readonly netns: string,
    readonly family: RestoreFamily,
    private readonly onDead: () => void,
  ) {
    const cmd = restoreCmd(family);
    this.child = spawn('nsenter', [`--net=${netns}`, '--', 'stdbuf', '-o0', cmd, '-w', '5', '--noflush'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (d: string) => {
      this.out += d;
      for (let m = ACK_LINE.exec(this.out); m; m = ACK_LINE.exec(this.out)) {
        this.out = this.out.slice(m.index + m[0].length);
        this.waiting.shift()?.resolve();
        if (this.waiting.length === 0) this.rest();
      }
    });
    this.child.stderr.on('data', (d: string) => {
      this.err = (this.err + d).slice(-4096);
    });
    this.child.stdin.on('error', () => undefined); // EPIPE after an exit: handled by 'close'
    this.child.on('error', (e) => this.die(e.message));
    this.child.on('close', (code) => this.die(`exited with ${code}`));
    this.rest();
  }

  run(text: string): Promise<void> {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    if (this.waiting.length === 0) this.hold(true);
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin.write(text + ACK);
    });
  }

  /** While a transaction is under way the child keeps this process alive; idle, it does not. */
  private hold(on: boolean): void {
    // The pipes are net.Sockets (ref/unref), typed as plain streams.
    for (const s of [this.child.stdout, this.child.stderr, this.child.stdin] as unknown as { ref(): void; unref(): void }[]) {
      if (on) s.ref();
      else s.unref();
    }
    if (on) this.child.ref();
    else this.child.unref();
  }

  private rest(): void {
    this.hold(false);
    this.idle = setTimeout(() => this.child.stdin.end(), IDLE_MS);
    this.idle.unref();
  }

  private die(why: string): void {
    if (this.dead) return;
    this.dead = true;
    if (this.idle) clearTimeout(this.idle);
    this.onDead();
    const err = new Error(`${restoreCmd(this.family)} in ${this.netns}: ${this.err.trim() || why}`);
    for (const w of this.waiting.splice(0)) w.reject(err);
  }
}

const sessions = new Map<string, Session>();

/**
 * Runs an iptables-restore transaction (text in iptables-save form, one table
 * block ending in COMMIT) in the netns: through the long-lived child of that
 * netns and family, or, if that fails, in a process of its own.
 */
export async function restore(netns: string, family: RestoreFamily, text: string): Promise<void> {
  const key = `${family} ${netns}`;
  let s = sessions.get(key);
  if (!s || s.dead) {
    const made: Session = new Session(netns, family, () => {
      if (sessions.get(key) === made) sessions.delete(key);
    });
    s = made;
    sessions.set(key, s);
  }
  try {
    await s.run(text);
  } catch (e) {
    if (process.env.VC_RESTORE_DEBUG) process.stderr.write(`restore-session fallback: ${(e as Error).message}\n`);
    await restoreOnce(netns, family, text);
  }
}

/** The long-lived children running now (for tests and status): their pid, netns and family. */
export function restoreSessions(): { pid: number; netns: string; family: RestoreFamily }[] {
  return [...sessions.values()].flatMap((s) => (s.pid === undefined || s.dead ? [] : [{ pid: s.pid, netns: s.netns, family: s.family }]));
}
