// The kill switch's channel into each run. Every process that injects listens
// on a unix socket in one directory (default /run/vitest-chaos, or
// VITEST_CHAOS_CONTROL_DIR) that must be root-owned and 0700; the socket itself
// is 0600. Those permissions keep everyone but root out, and they are checked
// (not assumed) before listening; behind them, each connection's peer uid
// (SO_PEERCRED, read by the addon) must be root's or ours, or it is closed
// unanswered.
// `vitest-chaos stop` also leaves a flag file there; every inject checks it
// first, so nothing new is applied until `vitest-chaos resume` removes it.
import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { processStartTicks } from '../journal/process-start.js';
import { loadAddon } from '../kernel/addon.js';

export const DEFAULT_CONTROL_DIR = '/run/vitest-chaos';
const STOP_FLAG = 'stopped';
/** A request is one short JSON line. */
const MAX_REQUEST = 4096;

export function controlDir(): string {
  return process.env.VITEST_CHAOS_CONTROL_DIR ?? DEFAULT_CONTROL_DIR;
}

/** Creates the directory, or checks the one there: a directory (not a link), owned by root, mode 0700. */
export function ensureControlDir(dir = controlDir()): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const problem = !st.isDirectory()
    ? 'it is not a directory'
    : st.uid !== 0
      ? `it is owned by uid ${st.uid}, not root`
      : (st.mode & 0o077) !== 0
        ? `its mode is ${(st.mode & 0o777).toString(8)}, not 700`
        : null;
  if (problem) {
    throw new Error(
      `vitest-chaos: the control directory ${dir} is unsafe (${problem}); the kill switch must be reachable by root only. Remove it or fix it (chown root, chmod 700).`,
    );
  }
  try {
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch {
    throw new Error(
      `vitest-chaos: the control directory ${dir} is reachable by root only, and this process runs as uid ${process.getuid?.()}: run the kill switch as root (e.g. sudo npx vitest-chaos stop).`,
    );
  }
  return dir;
}

export interface StopFlag {
  since: string;
  pid: number;
}

/** The kill switch's flag, or null when faults may be injected. */
export function readStopFlag(dir = controlDir()): StopFlag | null {
  const path = join(dir, STOP_FLAG);
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as StopFlag;
  } catch {
    return { since: 'unknown', pid: 0 };
  }
}

export function writeStopFlag(dir = controlDir()): StopFlag {
  ensureControlDir(dir);
  const flag = { since: new Date().toISOString(), pid: process.pid };
  writeFileSync(join(dir, `${STOP_FLAG}.tmp`), JSON.stringify(flag), { mode: 0o600 });
  // rename: a run never reads a half-written flag
  renameSync(join(dir, `${STOP_FLAG}.tmp`), join(dir, STOP_FLAG));
  return flag;
}

export function clearStopFlag(dir = controlDir()): boolean {
  const path = join(dir, STOP_FLAG);
  const was = existsSync(path);
  rmSync(path, { force: true });
  return was;
}

/** Thrown by an inject while the kill switch is on. */
export class KillSwitchError extends Error {
  override name = 'KillSwitchError';
  constructor(where: string, flag: StopFlag, dir: string) {
    super(
      `${where}: refused: the kill switch is on (\`vitest-chaos stop\` at ${flag.since} by pid ${flag.pid}, flag ${join(dir, STOP_FLAG)}); ` +
        'run `npx vitest-chaos resume` to allow faults again. Nothing was applied.',
    );
  }
}

/** Throws KillSwitchError when the kill switch is on. */
export function refuseIfStopped(where: string): void {
  const dir = controlDir();
  const flag = readStopFlag(dir);
  if (flag) throw new KillSwitchError(where, flag, dir);
}

/** What `vitest-chaos status` shows of one fault. */
export interface FaultSummary {
  id: string;
  kind: string;
  targets: string[];
  description: string;
}

/** A Chaos instance as the channel sees it. */
export interface ControlMember {
  faults(): FaultSummary[];
  /** Reverts every fault in force; returns what it reverted, and what failed. */
  stopAll(): Promise<{ reverted: string[]; errors: string[] }>;
}

/** The file beside each socket: who listens there. */
export interface ProcessRecord {
  pid: number;
  pidStart: number;
  threadId: number;
  /** The Vitest run (its main process) this worker belongs to; its own pid outside Vitest. */
  runPid: number;
  journalDir: string;
  cwd: string;
  startedAt: string;
  socket: string;
}

export type ControlRequest = { cmd: 'status' } | { cmd: 'stop' };
export type StatusReply = { record: ProcessRecord; faults: FaultSummary[] };
export type StopReply = { record: ProcessRecord; reverted: string[]; errors: string[] };

interface ChannelState {
  members: Set<ControlMember>;
  ready: Promise<Server>;
  record: ProcessRecord;
}

// Per process (and worker thread), not per module instance: Vitest may load this
// module again for each test file in the same worker.
const KEY = Symbol.for('vitest-chaos.control-channel');
type WithChannel = { [KEY]?: ChannelState };

/** The records of the processes listening in the control directory (their sockets beside them). */
export function processRecords(dir: string): ProcessRecord[] {
  const out: ProcessRecord[] = [];
  for (const name of readdirSync(dir)) {
    if (!/^\d+-\d+\.json$/.test(name)) continue;
    try {
      out.push(JSON.parse(readFileSync(join(dir, name), 'utf8')) as ProcessRecord);
    } catch {
      // being written
    }
  }
  return out;
}

/** Whether the process of a record still runs (same pid, same start time). */
export const recordAlive = (r: ProcessRecord): boolean => processStartTicks(r.pid) === r.pidStart;

/** Removes a record and its socket. */
export function forgetRecord(dir: string, r: ProcessRecord): void {
  rmSync(join(dir, `${r.pid}-${r.threadId}.sock`), { force: true });
  rmSync(join(dir, `${r.pid}-${r.threadId}.json`), { force: true });
}

/**
 * Removes the sockets and records of processes that died without removing them (SIGKILL):
 * done by each process that starts listening, and by `vitest-chaos status | stop`. Returns them.
 */
export function forgetDeadRecords(dir: string): ProcessRecord[] {
  const dead = processRecords(dir).filter((r) => !recordAlive(r));
  for (const r of dead) forgetRecord(dir, r);
  return dead;
}

/** The uid of the process at the other end of a connection to a unix socket, or null when it cannot be read. */
export function peerUid(conn: Socket): number | null {
  const fd = (conn as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  try {
    return loadAddon().peerCredentials(fd).uid;
  } catch {
    return null;
  }
}

/** Whether a connection to the channel may be answered: its peer is root, or runs as this process's uid. */
export function peerAllowed(conn: Socket): boolean {
  const uid = peerUid(conn);
  return uid !== null && (uid === 0 || uid === process.getuid?.());
}

/** Joins this Chaos instance to the process's channel, starting it on first use. */
export async function joinControlChannel(member: ControlMember, info: { runPid: number; journalDir: string }): Promise<void> {
  const g = globalThis as WithChannel;
  if (!g[KEY]) {
    const dir = ensureControlDir();
    forgetDeadRecords(dir);
    const base = `${process.pid}-${threadId}`;
    const socket = join(dir, `${base}.sock`);
    const record: ProcessRecord = {
      pid: process.pid,
      pidStart: processStartTicks(process.pid) ?? 0,
      threadId,
      runPid: info.runPid,
      journalDir: info.journalDir,
      cwd: process.cwd(),
      startedAt: new Date().toISOString(),
      socket,
    };
    const members = new Set<ControlMember>();
    const server = createServer((conn) => {
      // Behind the directory's mode: another uid's connection is closed unanswered.
      if (!peerAllowed(conn)) {
        conn.destroy();
        return;
      }
      let buf = '';
      conn.setEncoding('utf8');
      conn.on('error', () => undefined);
      conn.on('data', (chunk) => {
        buf += chunk;
        const nl = buf.indexOf('\n');
        if (nl < 0) {
          if (buf.length > MAX_REQUEST) conn.end(`${JSON.stringify({ error: 'request too long' })}\n`);
          return;
        }
        let req: ControlRequest;
        try {
          req = JSON.parse(buf.slice(0, nl)) as ControlRequest;
        } catch {
          conn.end(`${JSON.stringify({ error: 'bad request' })}\n`);
          return;
        }
        // The ack says "alive" at once; the reply may take as long as the reverts do.
        conn.write(`${JSON.stringify({ ack: true })}\n`);
        void answer(req, members, record).then((reply) => conn.end(`${JSON.stringify(reply)}\n`));
      });
    });
    rmSync(socket, { force: true });
    const ready = new Promise<Server>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => {
        chmodSync(socket, 0o600);
        writeFileSync(join(dir, `${base}.json`), JSON.stringify(record), { mode: 0o600 });
        resolve(server);
      });
    });
    server.unref(); // the channel never keeps a finished run alive
    process.once('exit', () => {
      rmSync(socket, { force: true });
      rmSync(join(dir, `${base}.json`), { force: true });
    });
    g[KEY] = { members, ready, record };
  }
  const state = g[KEY] as ChannelState;
  state.members.add(member);
  await state.ready;
}

async function answer(
  req: ControlRequest,
  members: Set<ControlMember>,
  record: ProcessRecord,
): Promise<StatusReply | StopReply | { error: string }> {
  if (req.cmd === 'status') return { record, faults: [...members].flatMap((m) => m.faults()) };
  if (req.cmd === 'stop') {
    const results = await Promise.all([...members].map((m) => m.stopAll()));
    return { record, reverted: results.flatMap((r) => r.reverted), errors: results.flatMap((r) => r.errors) };
  }
  return { error: `unknown command ${JSON.stringify((req as { cmd?: unknown }).cmd)}` };
}
