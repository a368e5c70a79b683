// Chaos on ourselves (issue 14): what vitest-chaos does when its own world
// breaks while faults are in force. Each case has one clear outcome and loses
// nothing: two runs (processes) injecting cgroup limits into one container,
// the journal directory read-only or full, a BPF map's slots exhausted, the
// target OOM-killed, removed or restarted under a fault, and Docker unreachable
// when a dead run's pause must be undone.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { GenericContainer, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChaos } from 'vitest-chaos';
import { Journal } from '../../src/journal/journal.js';
import { IMAGES, startClient, stopAll, testLabels } from '../helpers/containers.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { docker, state } from '../helpers/processes.js';
import { cgroupValue } from '../helpers/resources.js';
import { cgroupDirOf } from '../helpers/target-info.js';

// A journal of this file's own: the reaper below judges only our records.
const JOURNAL = mkdtempSync(join(tmpdir(), 'vc-self-chaos-'));
process.env.VITEST_CHAOS_JOURNAL_DIR = JOURNAL;
const chaos = createChaos({ seed: 14, progress: false });

/** Every injector started, ended in afterAll whatever a test did. */
const children: ChildProcess[] = [];

interface Injector {
  child: ChildProcess;
  lines: AsyncIterator<string>;
}

/** A second run: a process of its own that injects `spec` into the target and reverts on request. */
async function injector(target: StartedTestContainer, kind: string, params: Record<string, unknown>): Promise<Injector> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/inject-child.ts', kind, target.getId(), JSON.stringify(params)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: process.env,
  });
  children.push(child);
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (!String(first.value).startsWith('READY')) throw new Error(`injector said ${first.value}`);
  return { child, lines };
}

async function revertIn(i: Injector): Promise<void> {
  i.child.stdin!.write('revert\n');
  expect((await i.lines.next()).value).toBe('REVERTED');
}

async function end(i: Injector): Promise<void> {
  const exited = once(i.child, 'exit');
  i.child.kill('SIGKILL');
  await exited;
}

const quota = (c: StartedTestContainer) => cgroupValue(c, 'cpu/cpu.cfs_quota_us');
const records = () => readdirSync(JOURNAL).filter((f) => f.endsWith('.json'));
const limitFiles = () => {
  try {
    return readdirSync(join(JOURNAL, 'limits'));
  } catch {
    return [];
  }
};

describe('chaos on ourselves', () => {
  let target: StartedTestContainer;
  beforeAll(async () => {
    target = await startClient('self-chaos-target');
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await chaos.revertAll();
    await stopAll(target);
    rmSync(JOURNAL, { recursive: true, force: true });
  });

  describe('two runs injecting cpu-throttle into the same container', () => {
    it('both hold, and each revert undoes only its own layer, in either order', async () => {
      const original = await quota(target);
      for (const order of ['first-out-first', 'last-out-first'] as const) {
        const a = await injector(target, 'cpu-throttle', { cpus: 0.5 });
        expect(await quota(target)).toBe('50000');
        const b = await injector(target, 'cpu-throttle', { cpus: 0.2 });
        expect(await quota(target)).toBe('20000'); // the tightest holds
        if (order === 'first-out-first') {
          await revertIn(a);
          expect(await quota(target)).toBe('20000'); // b's still holds
          await revertIn(b);
        } else {
          await revertIn(b);
          expect(await quota(target)).toBe('50000'); // a's own value, not the original
          await revertIn(a);
        }
        expect(await quota(target)).toBe(original);
        await Promise.all([end(a), end(b)]);
        expect(records()).toEqual([]);
        expect(limitFiles()).toEqual([]);
      }
    });

    it('a run killed with SIGKILL: the reaper lifts only its layer, the live run keeps its limit', async () => {
      const original = await quota(target);
      const a = await injector(target, 'cpu-throttle', { cpus: 0.2 });
      const b = await injector(target, 'cpu-throttle', { cpus: 0.5 });
      expect(await quota(target)).toBe('20000');
      await end(a);
      const { reverted, failed, refused } = await new Journal(JOURNAL).reap();
      expect({ reverted: reverted.map((e) => e.pid), failed, refused }).toEqual({ reverted: [a.child.pid], failed: [], refused: [] });
      expect(await quota(target)).toBe('50000'); // b's, not the original
      await revertIn(b);
      expect(await quota(target)).toBe(original);
      await end(b);
      expect(records()).toEqual([]);
      expect(limitFiles()).toEqual([]);
    });

    it('a run and this process stack memory-limit and cpu-throttle on one target and unwind cleanly', async () => {
      const before = [await quota(target), await cgroupValue(target, 'memory/memory.limit_in_bytes')];
      const other = await injector(target, 'memory-limit', { bytes: 256 << 20 });
      const mine = await chaos.inject({ kind: 'memory-limit', target, bytes: 128 << 20 });
      const throttle = await chaos.inject({ kind: 'cpu-throttle', target, cpus: 0.3 });
      expect(await cgroupValue(target, 'memory/memory.limit_in_bytes')).toBe(String(128 << 20));
      await mine.revert();
      expect(await cgroupValue(target, 'memory/memory.limit_in_bytes')).toBe(String(256 << 20));
      await revertIn(other);
      await throttle.revert();
      expect([await quota(target), await cgroupValue(target, 'memory/memory.limit_in_bytes')]).toEqual(before);
      await end(other);
      expect(records()).toEqual([]);
      expect(limitFiles()).toEqual([]);
    });
  });

  describe('the journal directory cannot be written', () => {
    const mnt = join(tmpdir(), `vc-self-chaos-mnt-${process.pid}`);
    beforeAll(() => {
      mkdirSync(mnt, { recursive: true, mode: 0o700 });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'vc-journal', mnt]);
    });
    afterAll(() => {
      execFileSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    });

    const refuses = async (why: RegExp) => {
      process.env.VITEST_CHAOS_JOURNAL_DIR = mnt;
      try {
        const own = createChaos({ seed: 1, progress: false });
        const before = [await quota(target), (await state(target)).Status];
        for (const spec of [
          { kind: 'cpu-throttle', target, cpus: 0.3 },
          { kind: 'container-pause', target },
          { kind: 'memory-limit', target, bytes: 64 << 20 },
        ] as const) {
          await expect(own.inject(spec)).rejects.toThrow(why);
          expect(own.activeFaults()).toEqual([]);
        }
        expect([await quota(target), (await state(target)).Status]).toEqual(before);
      } finally {
        process.env.VITEST_CHAOS_JOURNAL_DIR = JOURNAL;
      }
    };

    it('full: inject refuses with the reason before changing anything', async () => {
      // leave a few hundred bytes: a record does not fit
      try {
        writeFileSync(join(mnt, 'filler'), Buffer.alloc(64 << 10));
      } catch {
        // ENOSPC: full, as wanted
      }
      await refuses(/journal directory .* is on a full disk \(ENOSPC\); nothing was changed/);
      expect(readdirSync(mnt).filter((f) => f !== 'filler' && f !== 'limits')).toEqual([]);
      expect(readdirSync(join(mnt, 'limits'))).toEqual([]); // no lock, stack or temporary file left
      rmSync(join(mnt, 'filler'));
    });

    it('read-only: inject refuses with the reason before changing anything', async () => {
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      try {
        await refuses(/journal directory .* is on a read-only file system \(EROFS\); nothing was changed/);
      } finally {
        execFileSync('mount', ['-o', 'remount,rw', mnt]);
      }
    });
  });

  it('a BPF map full: the 65th network-loss on one target is refused, the 64 hold and revert to nothing', async () => {
    const faults = [];
    for (let i = 0; i < 64; i++) faults.push(await chaos.inject({ kind: 'network-loss', target, percent: 1 + i }));
    await expect(chaos.inject({ kind: 'network-loss', target, percent: 50 })).rejects.toThrow(
      /already holds 64 faults of this kind; revert one before injecting another/,
    );
    expect(chaos.activeFaults()).toHaveLength(64);
    expect(faults.every((f) => f.active)).toBe(true);
    const dir = await cgroupDirOf(target);
    expect(await attachedPrograms(dir)).toHaveLength(2);
    await faults[3]!.revert();
    const again = await chaos.inject({ kind: 'network-loss', target, percent: 50 }); // a freed slot is reused
    for (const f of [...faults, again]) await f.revert();
    expect(await attachedPrograms(dir)).toEqual([]);
  });

  describe('the target goes away while faults are in force', () => {
    const faultsOn = async (c: StartedTestContainer) => [
      await chaos.inject({ kind: 'network-loss', target: c, percent: 30 }),
      await chaos.inject({ kind: 'cpu-throttle', target: c, cpus: 0.3 }),
      await chaos.inject({ kind: 'crash-on-syscall', target: c, syscall: 'mkdirat', signal: 'SIGKILL', percent: 100 }),
    ];

    it('removed: every revert is quiet, nothing is left', async () => {
      const doomed = await startClient('self-chaos-removed');
      const faults = await faultsOn(doomed);
      await docker.getContainer(doomed.getId()).remove({ force: true });
      for (const f of faults) await expect(f.revert()).resolves.toBeUndefined();
      expect(chaos.activeFaults()).toEqual([]);
      expect(records()).toEqual([]);
      expect(limitFiles()).toEqual([]);
    });

    it('restarted: the reverts are quiet and the restarted container has its own values', async () => {
      const c = await startClient('self-chaos-restarted');
      try {
        const before = await quota(c);
        const faults = await faultsOn(c);
        await docker.getContainer(c.getId()).restart({ t: 0 });
        for (const f of faults) await expect(f.revert()).resolves.toBeUndefined();
        expect(await quota(c)).toBe(before);
        expect(await attachedPrograms(await cgroupDirOf(c))).toEqual([]);
        expect(records()).toEqual([]);
        expect(limitFiles()).toEqual([]);
      } finally {
        await stopAll(c);
      }
    });

    it('OOM-killed under memory-limit: the kill is counted, the revert is quiet, nothing is left', async () => {
      const c = await new GenericContainer(IMAGES.client)
        .withLabels(testLabels('self-chaos-oom'))
        // PID 1 waits for the limit, then holds 300 MiB in a shell variable: it is what the OOM killer picks
        .withCommand(['bash', '-c', 'while [ ! -e /tmp/go ]; do sleep 0.1; done; x=$(head -c 300M /dev/zero | tr "\\0" a); sleep infinity'])
        .start();
      try {
        const f = await chaos.inject({ kind: 'memory-limit', target: c, bytes: 64 << 20 });
        await c.exec(['touch', '/tmp/go']);
        await expect.poll(async () => (await state(c)).Running, { timeout: 20_000, interval: 200 }).toBe(false);
        const st = await state(c);
        expect(st.OOMKilled || st.ExitCode === 137).toBe(true);
        await expect(f.revert()).resolves.toBeUndefined();
        expect(records()).toEqual([]);
        expect(limitFiles()).toEqual([]);
      } finally {
        await stopAll(c);
      }
    });
  });

  it('Docker unreachable when a dead run must be unpaused: the record is kept and reported, the next reap restores it', async () => {
    // Models dockerd restarting (restarting the shared engine would stop every engineer's containers):
    // the reaper runs while the engine does not answer, then again when it does.
    const c = await startClient('self-chaos-docker-down');
    try {
      const run = await injector(c, 'container-pause', {});
      expect((await state(c)).Paused).toBe(true);
      await end(run);
      const saved = process.env.DOCKER_HOST;
      process.env.DOCKER_HOST = `unix://${join(JOURNAL, 'no-engine.sock')}`;
      let first: Awaited<ReturnType<Journal['reap']>>;
      try {
        first = await new Journal(JOURNAL).reap();
      } finally {
        if (saved === undefined) delete process.env.DOCKER_HOST;
        else process.env.DOCKER_HOST = saved;
      }
      expect(first.reverted).toEqual([]);
      expect(first.failed.length + first.refused.length).toBe(1);
      expect(records()).toHaveLength(1);
      expect((await state(c)).Paused).toBe(true);
      const second = await new Journal(JOURNAL).reap();
      expect(second.reverted.map((e) => e.pid)).toEqual([run.child.pid]);
      expect((await state(c)).Paused).toBe(false);
      expect(records()).toEqual([]);
    } finally {
      await docker
        .getContainer(c.getId())
        .unpause()
        .catch(() => undefined);
      await stopAll(c);
    }
  });
});
