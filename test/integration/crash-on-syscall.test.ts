import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterEach, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { sh, startClient } from '../helpers/containers.js';
import { faultContract } from '../helpers/fault-contract.js';
import { binomialBounds } from '../helpers/stats.js';
import {
  docker,
  eventually,
  execDetached,
  execExitCode,
  parentPid,
  processesIn,
  removeQuietly,
  startRaw,
  state,
  sysEnterLinks,
} from '../helpers/processes.js';

// Waits without writing (sleep is another process, and reads nothing), starts on SIGUSR1, then makes
// exactly N write(2) calls (bash's echo, no forks), counting the SIGUSR2s it gets, and ends with one more.
const N = 20;
const writer = (n: number, file: string) =>
  `trap 'go=1' USR1; trap 'c=$((c+1))' USR2; c=0; while [ -z "$go" ]; do sleep 0.05; done; ` +
  `for ((i=1;i<=${n};i++)); do echo $i >> ${file}; done; echo $c > ${file}.caught`;
const MARK = "trap 'go=1' USR1";

/** Starts the writer in the container (before any fault, so docker exec's own writes are not counted). */
async function startWriter(c: StartedTestContainer, n = N, file = '/tmp/n') {
  const exec = await execDetached(c, ['bash', '-c', writer(n, file)]);
  let pid: number | undefined;
  const mine = (argv: string[]) => !!argv[2]?.includes(MARK) && argv[2].includes(`>> ${file};`);
  // The writer, not a child it forked to run `sleep` (same argv until it execs): the match whose
  // parent is not a match. Lowest pid is no guide: after the pids wrap, a child's is lower (CI
  // signalled a child of 523 instead of its writer, 32765, and the writer never started).
  await eventually(async () => {
    const matches = (await processesIn(c)).filter((p) => mine(p.argv)).map((p) => p.pid);
    const roots = matches.filter((m) => !matches.includes(parentPid(m) ?? 0));
    pid = roots.length === 1 ? roots[0] : undefined;
    return pid !== undefined;
  });
  // Its traps are set once /proc shows USR1 (bit 10) and USR2 (bit 12) caught.
  const caught = () => BigInt('0x' + (/SigCgt:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '0'));
  expect(await eventually(() => (caught() & 0xa00n) === 0xa00n)).toBe(true);
  return { exec, go: () => process.kill(pid!, 'SIGUSR1') };
}
const lines = async (c: StartedTestContainer, file = '/tmp/n') =>
  (await sh(c, `cat ${file} 2>/dev/null; rm -f ${file}`)).output.split('\n').filter(Boolean);

/** The same writer on the host. */
function hostWriter(n = N) {
  const file = join(mkdtempSync(join(tmpdir(), 'vc-crash-')), 'n');
  const child = spawn('bash', ['-c', writer(n, file)], { stdio: 'ignore' });
  return {
    go: async () => {
      await new Promise((r) => setTimeout(r, 200)); // its traps are set
      child.kill('SIGUSR1');
    },
    done: async () => {
      const [code] = (child.exitCode !== null ? [child.exitCode] : await once(child, 'exit')) as [number | null];
      return { code, lines: readFileSync(file, 'utf8').split('\n').filter(Boolean).length };
    },
  };
}

const logTicks = async (id: string) =>
  ((await docker.getContainer(id).logs({ stdout: true })) as Buffer).toString('latin1').split('tick').length - 1;

/**
 * The contract's measurement: a writer armed in the container before the fault (a `docker exec`
 * started while it is in force would be signalled itself), set going when taken; its exit code
 * and the lines it wrote, read through /proc from the host (no exec while the fault holds).
 */
let armed = 0;
async function armWriter(c: StartedTestContainer): Promise<() => Promise<{ code: number | null; lines: number }>> {
  const file = `/tmp/contract-${++armed}`;
  const w = await startWriter(c, N, file);
  return async () => {
    w.go();
    const code = await execExitCode(w.exec, 10_000);
    const onHost = `/proc/${(await state(c.getId())).Pid}/root${file}`;
    let written = '';
    try {
      written = readFileSync(onHost, 'utf8');
    } catch {
      // killed before its first write: no file
    }
    rmSync(onHost, { force: true });
    return { code, lines: written.split('\n').filter(Boolean).length };
  };
}

describe('crash-on-syscall', () => {
  faultContract({
    kind: 'crash-on-syscall',
    start: (name) => startClient(name),
    params: () => ({ syscall: 'write' }),
    arm: armWriter,
    // Its first write(2) is signalled (SIGKILL) before it copies anything.
    affected: (m) => expect(m).toEqual({ code: 137, lines: 0 }),
    normal: (m) => expect(m).toEqual({ code: 0, lines: N }),
    counts: (s) => expect(s).toEqual({ matched: 1, signalled: 1 }),
    // The container's processes (pid 1 lives on: it never writes) and the links this process holds.
    applied: async (c) => ({ pids: (await processesIn(c)).map((p) => p.pid), links: sysEnterLinks() }),
    // The same writer on the host writes all its lines while the fault is in force.
    host: async () => {
      const h = hostWriter();
      await h.go();
      return h.done();
    },
    bad: [
      ['a misspelt syscall', { syscall: 'wrte' }, /syscall is "wrte"; expected a syscall name of x86_64 like "write"/],
      ['no syscall', {}, /syscall is missing; expected a syscall name/],
      ['a syscall number out of range', { syscall: 5000 }, /syscall is 5000; expected .*a number from 0 to 1023/],
      ['percent 150', { syscall: 'write', percent: 150 }, /percent is 150; expected a number from 0 to 100/],
      ['afterCount -1', { syscall: 'write', afterCount: -1 }, /afterCount is -1; expected an integer from 0/],
      ['an unknown signal', { syscall: 'write', signal: 'SIGFOO' }, /signal is "SIGFOO"; expected a signal name/],
    ],
    // A bpf_link: the kernel detaches it when the injecting process dies.
    sigkill: 'nothing left',
  });

  const started: (StartedTestContainer | string)[] = [];
  const track = <T extends StartedTestContainer | string>(c: T): T => {
    started.push(c);
    return c;
  };
  afterEach(async () => {
    await removeQuietly(...started.splice(0));
    expect(sysEnterLinks()).toBe(0); // every fault of the test reverted: the program is detached
  });

  it('kills the main process when it writes (exit 137); a control container and a host process writing the same way live on', async () => {
    const loop = ['bash', '-c', 'while :; do echo tick; sleep 0.1; done'];
    const [target, control] = await Promise.all([
      startRaw('crash-main', { cmd: loop }),
      startRaw('crash-main-control', { cmd: loop }),
    ]).then((ids) => ids.map(track));
    const host = spawn('bash', ['-c', 'while :; do echo tick; sleep 0.1; done'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let hostTicks = 0;
    host.stdout!.on('data', (d: Buffer) => (hostTicks += d.toString().split('tick').length - 1));
    try {
      await eventually(async () => (await logTicks(target!)) >= 3);
      const fault = await chaos.inject({ kind: 'crash-on-syscall', target: target!, syscall: 'write' });
      expect(sysEnterLinks()).toBe(1);
      expect(await eventually(async () => !(await state(target!)).Running, 3000)).toBe(true);
      expect((await state(target!)).ExitCode).toBe(137);
      const [controlTicks0, hostTicks0] = [await logTicks(control!), hostTicks];
      await new Promise((r) => setTimeout(r, 1000));
      expect((await state(control!)).Running).toBe(true);
      expect((await logTicks(control!)) - controlTicks0).toBeGreaterThanOrEqual(5);
      expect(hostTicks - hostTicks0).toBeGreaterThanOrEqual(5);
      expect(host.exitCode).toBe(null);
      const s = fault.stats();
      expect(s.signalled).toBe(1);
      expect(s.matched).toBe(1);

      await fault.revert();
      expect(sysEnterLinks()).toBe(0);
      expect(fault.stats()).toEqual(s);
      // Started again, it writes freely.
      const ticks0 = await logTicks(target!);
      await docker.getContainer(target!).start();
      await new Promise((r) => setTimeout(r, 1000));
      expect((await state(target!)).Running).toBe(true);
      expect((await logTicks(target!)) - ticks0).toBeGreaterThanOrEqual(5);
      await fault.revert(); // twice: quiet
    } finally {
      host.kill('SIGKILL');
    }
  });

  it('afterCount lets the first calls pass; the next kills the process; the control and the host write all', async () => {
    const [target, control] = (await Promise.all([startClient('crash-after'), startClient('crash-after-control')])).map(track);
    const [w, wc] = await Promise.all([startWriter(target!), startWriter(control!)]);
    const host = hostWriter();
    const fault = await chaos.inject({ kind: 'crash-on-syscall', target: target!, syscall: 'write', afterCount: 5 });
    w.go();
    wc.go();
    await host.go();
    expect(await execExitCode(w.exec)).toBe(137);
    expect(await execExitCode(wc.exec)).toBe(0);
    expect(await host.done()).toEqual({ code: 0, lines: N });
    expect(fault.stats()).toEqual({ matched: 6, signalled: 1 });
    // pid 1 (sleep) made no write: it lives.
    expect((await state(target!)).Running).toBe(true);
    await fault.revert();

    // The 6th write was entered but wrote nothing: a file write sees the pending SIGKILL before it copies.
    expect(await lines(target!)).toEqual(['1', '2', '3', '4', '5']);
    expect(await lines(control!)).toHaveLength(N);
    // After revert a new process in the target writes freely.
    const again = await startWriter(target!);
    again.go();
    expect(await execExitCode(again.exec)).toBe(0);
    expect(await lines(target!)).toHaveLength(N);
  });

  it('percent draws with the seed: a non-fatal signal is counted by the process itself, and replays', async () => {
    const target = track(await startClient('crash-percent'));
    const M = 400;
    const rounds: number[] = [];
    for (let round = 0; round < 2; round++) {
      const w = await startWriter(target, M);
      const fault = await chaos.inject({ kind: 'crash-on-syscall', target, syscall: 'write', signal: 'SIGUSR2', percent: 30, seed: 77 });
      w.go();
      expect(await execExitCode(w.exec, 10_000)).toBe(0);
      const s = fault.stats();
      await fault.revert();
      const caught = Number((await lines(target, '/tmp/n.caught'))[0]);
      expect(await lines(target)).toHaveLength(M);
      expect(s.matched).toBe(M + 1); // and the final echo of the count
      // The last write's signal (if drawn) comes after the count was taken.
      expect(s.signalled! - caught).toBeGreaterThanOrEqual(0);
      expect(s.signalled! - caught).toBeLessThanOrEqual(1);
      const [lo, hi] = binomialBounds(M, 0.3);
      expect(caught).toBeGreaterThanOrEqual(lo);
      expect(caught).toBeLessThanOrEqual(hi);
      console.info(`crash-on-syscall 30% SIGUSR2: ${s.matched} writes, ${s.signalled} signals sent, ${caught} caught by the process`);
      rounds.push(s.signalled!);
    }
    expect(rounds[1]).toBe(rounds[0]);
  });

  it('another syscall passes: fsync does not touch a process that only writes', async () => {
    const target = track(await startClient('crash-other'));
    const w = await startWriter(target);
    const fault = await chaos.inject({ kind: 'crash-on-syscall', target, syscall: 'fsync' });
    w.go();
    expect(await execExitCode(w.exec)).toBe(0);
    expect(fault.stats()).toEqual({ matched: 0, signalled: 0 });
    await fault.revert();
    expect(await lines(target)).toHaveLength(N);
  });

  it('applied twice, reverted twice, reverted after the container is gone: quiet', async () => {
    const target = track(await startClient('crash-twice'));
    const w = await startWriter(target);
    const a = await chaos.inject({ kind: 'crash-on-syscall', target, syscall: 1, afterCount: 3 });
    const b = await chaos.inject({ kind: 'crash-on-syscall', target, syscall: 'write', afterCount: 3 });
    expect(sysEnterLinks()).toBe(1); // one program for every fault
    w.go();
    expect(await execExitCode(w.exec)).toBe(137);
    expect([a.stats(), b.stats()]).toEqual([
      { matched: 4, signalled: 1 },
      { matched: 4, signalled: 1 },
    ]);
    await a.revert();
    await a.revert();
    expect(sysEnterLinks()).toBe(1);
    await removeQuietly(target);
    await b.revert();
    expect(sysEnterLinks()).toBe(0);
  });
});
