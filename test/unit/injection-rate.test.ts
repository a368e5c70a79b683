// maxInjectionsPerMinute's files of injection times: one per run, gone when the
// run ends, and reaped when the run died without removing it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InjectionRate, rateFileOf, reapDeadRates, removeRunRate } from '../../src/api/injection-rate.js';
import { processStartTicks } from '../../src/journal/process-start.js';

describe('injection-rate files', () => {
  let dir: string;
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env.VITEST_CHAOS_CONTROL_DIR;
    dir = mkdtempSync(join(tmpdir(), 'vc-rate-'));
    process.env.VITEST_CHAOS_CONTROL_DIR = dir;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.VITEST_CHAOS_CONTROL_DIR;
    else process.env.VITEST_CHAOS_CONTROL_DIR = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  /** A pid that has exited (its process ran `true`). */
  const deadPid = () => spawnSync('true').pid as number;

  it('names the file after the run (pid and start time), counts there, and removes it when the run ends', () => {
    const rate = new InjectionRate(2, process.pid);
    rate.take('t');
    rate.take('t');
    expect(() => rate.take('t')).toThrow(/maxInjectionsPerMinute is 3; expected at most 2/);
    expect(readdirSync(dir)).toEqual([`rate-${process.pid}-${processStartTicks(process.pid)}.json`]);
    removeRunRate(process.pid, dir);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("removes a dead run's file and its lock at the next run's first count, and keeps a live run's", () => {
    const dead = deadPid();
    const reused = `rate-${process.pid}-1.json`; // this pid, another start time: a run that died before this one started
    writeFileSync(join(dir, `rate-${dead}-123.json`), '[1]');
    mkdirSync(join(dir, `rate-${dead}-123.json.lock`));
    writeFileSync(join(dir, reused), '[1]');
    const live = rateFileOf(process.ppid);
    writeFileSync(join(dir, live), `[${Date.now()}]`);
    writeFileSync(join(dir, '123-0.json'), '{}'); // a kill-switch record: not ours to judge here

    new InjectionRate(5, process.pid).take('t');
    expect(readdirSync(dir).sort()).toEqual(['123-0.json', rateFileOf(process.pid), live].sort());
    expect(reapDeadRates(dir)).toEqual([]);
  });

  it('a script (the run is its process) removes its file when it exits', () => {
    const script = `import { InjectionRate } from './src/api/injection-rate.ts'; new InjectionRate(3, process.pid).take('t'); console.log(process.pid);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, VITEST_CHAOS_CONTROL_DIR: dir },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(Number(r.stdout.trim())).toBeGreaterThan(0);
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(true);
  });
});
