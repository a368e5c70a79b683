// Runs undo actions (undo-schema.ts): nothing runs until every action of a
// record has passed its schema and its checks (undo-guard.ts). Each action
// tolerates a target that has gone (container removed, process
// exited, cgroup deleted): that is "undone".
import Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { checkUndo, UndoRefused, type Checked } from './undo-guard.js';
import type { LimitStacks } from './limit-stack.js';
import { processStartTicks } from './process-start.js';
import { undoActionSchema, type UndoAction } from './undo-schema.js';

export { CGROUP_FILES, cgroupWriteUndo, DISK_FILL_FILE, OUR_QDISC_HANDLE, undoActionSchema, type UndoAction } from './undo-schema.js';

const run = promisify(execFile);

export { UndoRefused } from './undo-guard.js';

/**
 * Checks every action, then runs them in order. `fromDisk`: the actions were
 * read from a journal file (the reaper), so the containers they name must
 * carry our runs' labels; our own live records skip that Docker round trip
 * (the blast radius let them in, including containers allowed by name).
 * Throws UndoRefused, having run nothing, when an action fails its checks.
 */
export async function runUndo(actions: unknown[], opts: { docker?: Docker; fromDisk?: boolean; limits?: LimitStacks } = {}): Promise<void> {
  const docker = opts.docker ?? new Docker();
  const checked: Checked[] = [];
  for (const [i, raw] of actions.entries()) {
    const parsed = undoActionSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue?.path.join('.') || 'type';
      throw new UndoRefused(`undo[${i}].${field}: ${issue?.message ?? 'invalid'} (got ${JSON.stringify(pick(raw, issue?.path))})`);
    }
    let action = parsed.data;
    // A limit other live runs still hold gets what they need, not the original (limit-stack.ts); checked like any write.
    if (action.type === 'cgroup-write' && opts.limits) action = { ...action, content: opts.limits.restoreFor(action.path, action.content) };
    checked.push(await checkUndo(action, i, docker, opts.fromDisk ?? false));
  }
  for (const c of checked) if (!c.gone) await undoOne(c.action, docker);
}

/** Throws UndoRefused when an action is not one we could have written (schema and static checks only). */
export function assertUndoShape(actions: UndoAction[]): void {
  for (const [i, a] of actions.entries()) {
    const parsed = undoActionSchema.safeParse(a);
    if (!parsed.success) throw new UndoRefused(`undo[${i}]: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  }
}

function pick(raw: unknown, path: PropertyKey[] | undefined): unknown {
  let v: unknown = raw;
  for (const k of path ?? []) v = v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  const s = JSON.stringify(v) ?? 'undefined';
  return s.length > 200 ? `${s.slice(0, 200)}...` : v;
}

async function undoOne(a: UndoAction, docker: Docker): Promise<void> {
  switch (a.type) {
    case 'cgroup-write':
      try {
        writeFileSync(a.path, a.content);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // the cgroup is gone with its container
      }
      return;
    case 'kill': {
      for (const p of a.pids) {
        if (processStartTicks(p.pid) !== p.start) continue; // exited, or the pid was reused
        try {
          process.kill(p.pid, a.signal ?? 'SIGKILL');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      }
      return;
    }
    case 'docker-unpause':
      return ignoreGone(() => docker.getContainer(a.containerId).unpause(), [304, 404, 409]);
    case 'docker-start':
      return ignoreGone(() => docker.getContainer(a.containerId).start(), [304, 404]);
    case 'disk-fill-remove': {
      const cmd = ['rm', '-f', '--', posix.join(a.dir, a.file)];
      return ignoreGone(async () => {
        const exec = await docker.getContainer(a.containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
        const stream = await exec.start({});
        await new Promise<void>((resolve, reject) => {
          stream.on('end', resolve);
          stream.on('error', reject);
          stream.resume();
        });
        const { ExitCode } = await exec.inspect();
        if (ExitCode !== 0) throw new Error(`${cmd.join(' ')} in container ${a.containerId.slice(0, 12)} exited with ${ExitCode}`);
      }, [404]); // 409 (paused or stopped): the file is still there, so the record stays
    }
    case 'iptables-chain-del':
      return deleteQueueChain(a.netns, a.chain, a.family ?? 4);
    case 'tc-qdisc-del': {
      const tc = ['tc', 'qdisc', 'del', 'dev', a.device, 'root', 'handle', a.handle];
      const argv = a.netns === null ? tc : ['nsenter', `--net=${a.netns}`, '--', ...tc];
      try {
        await run(argv[0] as string, argv.slice(1));
      } catch (err) {
        // 1: no such device or netns, 2: no such qdisc (or not ours): gone
        const code = (err as { code?: number }).code;
        if (code === 1 || code === 2) return;
        throw err;
      }
      return;
    }
  }
}

/** Removes a chain of ours from a container's netns (its IPv4 or IPv6 tables): every jump to it, its rules, the chain. */
export async function deleteQueueChain(netns: string, chain: string, family: 4 | 6 = 4): Promise<void> {
  const iptables = family === 6 ? 'ip6tables' : 'iptables';
  // VC-H<port>-P: an inbound proxy's REDIRECT (nat, PREROUTING); VC-Q<queue>-<O|I>: NFQUEUE (mangle, OUTPUT / INPUT).
  const table = chain.endsWith('-P') ? 'nat' : 'mangle';
  const ipt = (args: string[]) => run('nsenter', [`--net=${netns}`, '--', iptables, '-w', '5', '-t', table, ...args]);
  const from = chain.endsWith('-P') ? 'PREROUTING' : chain.endsWith('-O') ? 'OUTPUT' : 'INPUT';
  // The usual state (one jump) in one transaction, one process; anything else step by step.
  const once = await new Promise<boolean>((resolve) => {
    const child = execFile('nsenter', [`--net=${netns}`, '--', `${iptables}-restore`, '-w', '5', '--noflush'], (err) => resolve(!err));
    child.stdin?.on('error', () => undefined); // EPIPE when it exits at once (netns gone): its exit says so
    child.stdin?.end(`*${table}\n-D ${from} -j ${chain}\n-F ${chain}\n-X ${chain}\nCOMMIT\n`);
  });
  if (once) return;
  try {
    await ipt(['-S', chain]);
  } catch {
    return; // no such chain (or netns): gone
  }
  for (let i = 0; i < 16; i++) {
    try {
      await ipt(['-D', from, '-j', chain]);
    } catch {
      break;
    }
  }
  await ipt(['-F', chain]);
  await ipt(['-X', chain]);
}

async function ignoreGone(fn: () => Promise<unknown>, okStatus: number[]): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status !== undefined && okStatus.includes(status)) return;
    throw err;
  }
}
