// The undo actions a journal entry can hold. Each tolerates a target that has
// gone (container removed, process exited, cgroup deleted): that is "undone".
import type Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { processStartTicks } from './process-start.js';

export type UndoAction =
  /** Write a saved value back (cgroup files: cpu.cfs_quota_us, memory.limit_in_bytes, blkio.throttle.*). */
  | { type: 'write-file'; path: string; content: string }
  /** Kill processes we started (burners), if they are still the same processes. */
  | { type: 'kill'; pids: { pid: number; start: number }[]; signal?: NodeJS.Signals }
  | { type: 'docker-unpause'; containerId: string }
  | { type: 'docker-start'; containerId: string }
  /** Run a command inside a container (e.g. remove a file disk-fill wrote). */
  | { type: 'docker-exec'; containerId: string; cmd: string[] }
  /** Run a host command (e.g. `tc qdisc del ...`); exit codes in okExitCodes count as done. */
  | { type: 'exec'; argv: string[]; okExitCodes?: number[] };

const run = promisify(execFile);

export async function runUndo(actions: UndoAction[], docker?: Docker): Promise<void> {
  // dockerode is loaded only for Docker actions: the kill switch reaps cgroup
  // values and burners of a stuck run without paying its seconds of start-up.
  let engine = docker;
  const dockerOf = async () => {
    engine ??= new (await import('dockerode')).default();
    return engine;
  };
  for (const a of actions) await undoOne(a, dockerOf);
}

async function undoOne(a: UndoAction, dockerOf: () => Promise<Docker>): Promise<void> {
  switch (a.type) {
    case 'write-file':
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
      return ignoreGone(async () => (await dockerOf()).getContainer(a.containerId).unpause(), [304, 404, 409]);
    case 'docker-start':
      return ignoreGone(async () => (await dockerOf()).getContainer(a.containerId).start(), [304, 404]);
    case 'docker-exec':
      // Only 404 means gone: 409 is a paused or stopped container, whose file is still there.
      return ignoreGone(async () => {
        const exec = await (await dockerOf()).getContainer(a.containerId).exec({ Cmd: a.cmd, AttachStdout: true, AttachStderr: true });
        const stream = await exec.start({});
        await new Promise<void>((resolve, reject) => {
          stream.on('end', resolve);
          stream.on('error', reject);
          stream.resume();
        });
        const { ExitCode } = await exec.inspect();
        if (ExitCode !== 0) throw new Error(`${a.cmd.join(' ')} in container ${a.containerId.slice(0, 12)} exited with ${ExitCode}`);
      }, [404]);
    case 'exec':
      try {
        await run(a.argv[0] as string, a.argv.slice(1));
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (typeof code === 'number' && (a.okExitCodes ?? []).includes(code)) return;
        throw err;
      }
      return;
  }
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
