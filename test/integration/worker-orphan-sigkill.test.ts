// A CI timeout often SIGKILLs the Vitest main process alone. Its test worker
// (a child process of the forks pool) must then revert every fault at once
// and exit, not hold them until its own test times out.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Journal } from '../../src/journal/journal.js';
import { cgroupV1Dir, readCgroupFile } from '../../src/targets/cgroup-v1.js';
import { sigkillTargets } from '../helpers/injector.js';
import { state } from '../helpers/processes.js';

const env = sigkillTargets('orphan');

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');

it('a worker whose Vitest main process was SIGKILLed reverts its faults and exits within 2 s', async () => {
  const { target, control } = env;
  const quotaFile = () => readCgroupFile(cgroupV1Dir(targetPid, 'cpu'), 'cpu.cfs_quota_us');
  const targetPid = (await state(target)).Pid;
  const quotaBefore = quotaFile();
  const controlBefore = readCgroupFile(cgroupV1Dir((await state(control)).Pid, 'cpu'), 'cpu.cfs_quota_us');
  const ready = join(mkdtempSync(join(tmpdir(), 'vc-orphan-')), 'worker.pid');
  const main = spawn(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', '--config', 'test/child-runs/vitest.config.ts'], {
    env: { ...process.env, VC_FIXTURE: 'parent-dies.fixture.ts', VC_TARGET: target.getId(), VC_READY_FILE: ready },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  main.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let worker = 0;
  try {
    await expect.poll(() => existsSync(ready), { timeout: 60_000, interval: 100 }).toBe(true);
    worker = Number(readFileSync(ready, 'utf8'));
    expect(worker).not.toBe(main.pid);
    expect((await state(target)).Paused).toBe(true);
    expect(quotaFile()).toBe('20000');

    const exited = new Promise((r) => main.once('exit', r));
    main.kill('SIGKILL');
    await exited;
    const t0 = performance.now();
    let unpausedMs: number | null = null;
    let quotaMs: number | null = null;
    let goneMs: number | null = null;
    while (performance.now() - t0 < 10_000 && (unpausedMs === null || quotaMs === null || goneMs === null)) {
      const ms = performance.now() - t0;
      if (unpausedMs === null && !(await state(target)).Paused) unpausedMs = ms;
      if (quotaMs === null && quotaFile() === quotaBefore) quotaMs = ms;
      if (goneMs === null && !alive(worker)) goneMs = ms;
      await new Promise((r) => setTimeout(r, 20));
    }
    if (stderr) console.info(`child run's stderr: ${stderr}`);
    console.info(
      `after SIGKILL of the main process: unpaused in ${unpausedMs?.toFixed(0)} ms, quota ${quotaBefore} again in ${quotaMs?.toFixed(0)} ms, worker gone in ${goneMs?.toFixed(0)} ms`,
    );
    expect(unpausedMs).not.toBeNull();
    expect(quotaMs).not.toBeNull();
    expect(goneMs).not.toBeNull();
    expect(Math.max(unpausedMs!, quotaMs!, goneMs!)).toBeLessThan(2000);
    // it reverted through its journal: nothing is left for a reaper
    expect(new Journal().entries().filter((e) => e.pid === worker)).toEqual([]);
    expect(readCgroupFile(cgroupV1Dir((await state(control)).Pid, 'cpu'), 'cpu.cfs_quota_us')).toBe(controlBefore);
    expect((await state(control)).Paused).toBe(false);
  } finally {
    if (main.exitCode === null && main.signalCode === null) main.kill('SIGKILL');
    if (worker && alive(worker)) process.kill(worker, 'SIGKILL');
    await new Journal().reap();
  }
});
