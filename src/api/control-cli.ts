// `vitest-chaos stop | resume | status`: the kill switch, run from any shell
// as root. stop: raises the flag every inject checks (new injects refuse),
// asks every live run's processes over their sockets to revert what they
// hold, and, for a process that does not answer within the grace period (a
// stuck event loop answers nothing, signal handlers included), SIGKILLs it:
// the kernel then drops its eBPF links and in-process proxies, and its journal
// records (cgroup values, paused containers, burners, qdiscs) are reverted
// here by the reaper, as the next run would. resume lowers the flag.
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Journal } from '../journal/journal.js';
import { processStartTicks } from '../journal/process-start.js';
import {
  clearStopFlag,
  controlDir,
  ensureControlDir,
  forgetDeadRecords,
  forgetRecord,
  processRecords,
  recordAlive,
  readStopFlag,
  writeStopFlag,
  type ControlRequest,
  type ProcessRecord,
  type StatusReply,
  type StopReply,
} from './control-channel.js';
import { reapDeadRates } from './injection-rate.js';

/** How long a process may take to answer before it is taken for stuck. Default 300 ms (stop must finish within 1 s). */
const DEFAULT_GRACE_MS = 300;

/**
 * Sends one request; null when no ack came within `ackMs` (stuck or gone) or
 * no reply within `replyMs` after it.
 */
function ask<T>(r: ProcessRecord, req: ControlRequest, ackMs: number, replyMs = 10_000): Promise<T | null> {
  return new Promise((resolve) => {
    let buf = '';
    const sock = connect(r.socket);
    let timer = setTimeout(() => done(null), ackMs);
    function done(v: T | null) {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    }
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (c) => {
      buf += c;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let msg: { ack?: boolean };
        try {
          msg = JSON.parse(line) as { ack?: boolean };
        } catch {
          done(null);
          return;
        }
        if (msg.ack) {
          clearTimeout(timer);
          timer = setTimeout(() => done(null), replyMs);
        } else {
          done(msg as T);
          return;
        }
      }
    });
    sock.on('error', () => done(null));
  });
}

async function reapDead(journalDir: string, pid: number, out: string[]): Promise<boolean> {
  const { reverted, failed } = await new Journal(journalDir).reap();
  for (const e of reverted) out.push(`  reverted from the journal: ${e.description} (pid ${e.pid})`);
  for (const f of failed) out.push(`  FAILED to revert from the journal: ${f.entry.description}: ${f.error}`);
  return failed.every((f) => f.entry.pid !== pid);
}

export async function stop(opts: { graceMs?: number; dir?: string } = {}): Promise<{ ok: boolean; lines: string[] }> {
  const dir = ensureControlDir(opts.dir ?? controlDir());
  const grace = opts.graceMs ?? DEFAULT_GRACE_MS;
  const flag = writeStopFlag(dir);
  reapDeadRates(dir);
  const lines = [`kill switch ON since ${flag.since}: new injects are refused until \`vitest-chaos resume\``];
  let ok = true;
  const all = processRecords(dir);
  await Promise.all(
    all.map(async (r) => {
      const out: string[] = [];
      const who = `run ${r.runPid} process ${r.pid}${r.threadId ? `/${r.threadId}` : ''}`;
      if (!recordAlive(r)) {
        out.push(`${who}: gone`);
        ok = (await reapDead(r.journalDir, r.pid, out)) && ok;
        forgetRecord(dir, r);
      } else {
        const reply = await ask<StopReply>(r, { cmd: 'stop' }, grace);
        if (reply && 'record' in reply) {
          out.push(`${who}: reverted ${reply.reverted.length} fault(s)`, ...reply.reverted.map((f) => `  ${f}`));
          for (const e of reply.errors) out.push(`  FAILED: ${e}`);
          if (reply.errors.length) ok = false;
        } else {
          // Stuck: only the kernel can drop its links; the journal undoes the rest.
          out.push(`${who}: ${reply ? 'answered with an error' : `no answer within ${grace} ms (stuck?)`}: SIGKILL`);
          try {
            process.kill(r.pid, 'SIGKILL');
          } catch {
            // exited meanwhile
          }
          for (let i = 0; i < 100 && processStartTicks(r.pid) === r.pidStart; i++) await sleep(5);
          ok = (await reapDead(r.journalDir, r.pid, out)) && ok;
          forgetRecord(dir, r);
        }
      }
      lines.push(...out);
    }),
  );
  if (all.length === 0) lines.push('no live runs');
  return { ok, lines };
}

export function resume(opts: { dir?: string } = {}): { lines: string[] } {
  const was = clearStopFlag(ensureControlDir(opts.dir ?? controlDir()));
  return { lines: [was ? 'kill switch OFF: injects are allowed again' : 'kill switch was not on'] };
}

export async function status(opts: { dir?: string } = {}): Promise<{ lines: string[]; runs: StatusReply[] }> {
  const dir = ensureControlDir(opts.dir ?? controlDir());
  reapDeadRates(dir);
  const flag = readStopFlag(dir);
  const lines = [flag ? `kill switch ON since ${flag.since} (pid ${flag.pid})` : 'kill switch off'];
  const runs: StatusReply[] = [];
  forgetDeadRecords(dir);
  const live = processRecords(dir);
  const replies = await Promise.all(live.map((r) => ask<StatusReply>(r, { cmd: 'status' }, 1000).then((rep) => [r, rep] as const)));
  const byRun = new Map<number, (readonly [ProcessRecord, StatusReply | null])[]>();
  for (const pair of replies) byRun.set(pair[0].runPid, [...(byRun.get(pair[0].runPid) ?? []), pair]);
  for (const [runPid, procs] of byRun) {
    lines.push(`run ${runPid} (${procs[0]?.[0].cwd})`);
    for (const [r, rep] of procs) {
      if (!rep) {
        lines.push(`  process ${r.pid}: not answering (stuck?); \`vitest-chaos stop\` would SIGKILL it and revert its journal`);
        continue;
      }
      runs.push(rep);
      lines.push(`  process ${r.pid}: ${rep.faults.length} active fault(s)`);
      for (const f of rep.faults) lines.push(`    ${f.id} ${f.kind} on ${f.targets.join(', ')}: ${f.description}`);
    }
  }
  if (live.length === 0) lines.push('no live runs');
  return { lines, runs };
}

const USAGE = `usage: vitest-chaos <stop|resume|status> [--grace-ms N]
  stop    revert every active fault of every live run on this machine, refuse new injects
  resume  allow injects again
  status  list live runs, their active faults and targets`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const graceAt = rest.indexOf('--grace-ms');
  const graceMs = graceAt >= 0 ? Number(rest[graceAt + 1]) : undefined;
  if (graceMs !== undefined && !(Number.isFinite(graceMs) && graceMs >= 0)) {
    process.stderr.write(`vitest-chaos: --grace-ms is ${rest[graceAt + 1]}; expected a number of milliseconds >= 0\n`);
    return 2;
  }
  try {
    if (cmd === 'stop') {
      const r = await stop({ graceMs });
      process.stdout.write(`${r.lines.join('\n')}\n`);
      return r.ok ? 0 : 1;
    }
    if (cmd === 'resume') {
      process.stdout.write(`${resume().lines.join('\n')}\n`);
      return 0;
    }
    if (cmd === 'status') {
      process.stdout.write(`${(await status()).lines.join('\n')}\n`);
      return 0;
    }
  } catch (err) {
    process.stderr.write(`vitest-chaos ${cmd}: ${(err as Error).message}\n`);
    return 1;
  }
  process.stderr.write(`${USAGE}\n`);
  return 2;
}
