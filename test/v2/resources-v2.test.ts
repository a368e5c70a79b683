// Every resource kind on pure cgroup v2 with Docker's systemd driver (run in
// the guest of scripts/v2-guest.sh). Under emulation CPU work is 12-18x slower
// than on a host, so what is asserted are ratios and kernel-held caps.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { Journal } from '../../src/journal/journal.js';
import { sh, startHttpServer, stopAll } from '../helpers/containers.js';
import { dd, MiB } from '../helpers/resources.js';
import { expectPureV2WithSystemdDriver, v2BusyLoop, v2Keyed, v2Limits, v2Processes, v2Value } from './v2-helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ALLOC = (mib: number) => `node -e 'const a=[];for(let i=0;i<${mib / 16};i++)a.push(Buffer.alloc(16<<20,1))'`;

describe('resource kinds on cgroup v2 (systemd driver)', () => {
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  let limits: Record<string, string>;

  beforeAll(async () => {
    expectPureV2WithSystemdDriver();
    [target, control] = await Promise.all([startHttpServer('v2-target'), startHttpServer('v2-control')]);
    limits = await v2Limits(target);
    expect(limits['cpu.max']).toBe('max 100000');
    expect(limits['memory.max']).toBe('max');
  });
  afterAll(() => stopAll(target, control));

  it('cpu-throttle 0.2 slows a busy loop in the target at least 3x (cpu.max), not the control, and lifts on revert', async () => {
    // one loop at a time: the guest may have a single vCPU, which two loops would share
    const loops = async () => [await v2BusyLoop(target, 4000), await v2BusyLoop(control, 4000)] as const;
    const [base, controlBase] = await loops();
    const fault = await chaos.inject({ kind: 'cpu-throttle', target, cpus: 0.2 });
    expect(await v2Value(target, 'cpu.max')).toBe('20000 100000');
    const [during, controlDuring] = await loops();
    const stats = fault.stats();
    await fault.revert();
    const restored = await v2Value(target, 'cpu.max');
    const [after, controlAfter] = await loops();
    const slow = (a: { iterations: number }, b: { iterations: number }) => a.iterations / b.iterations;
    const cpus = (...r: { cpus: number }[]) => r.map((x) => x.cpus.toFixed(2)).join(' -> ');
    console.info(
      `v2 cpu-throttle 0.2: target loop slowed ${slow(base, during).toFixed(1)}x, CPUs ${cpus(base, during, after)}; ` +
        `control ${slow(controlBase, controlDuring).toFixed(2)}x, CPUs ${cpus(controlBase, controlDuring, controlAfter)}; ` +
        `after revert ${slow(base, after).toFixed(2)}x / control ${slow(controlBase, controlAfter).toFixed(2)}x; ${JSON.stringify(stats)}`,
    );
    expect(slow(base, during)).toBeGreaterThanOrEqual(3);
    expect(during.cpus).toBeLessThanOrEqual(0.25); // the quota is a hard cap per period
    expect(stats).toMatchObject({ quotaUs: 20000, periodUs: 100000 });
    expect(stats.throttledPeriods).toBeGreaterThan(5);
    expect(restored).toBe('max 100000');
    // Not slowed (the control) and lifted (the target after revert): the CPU their loops got.
    // Their iteration counts are only printed: under emulation the guest's pace follows the
    // host's load (twice as slow from one loop to the next was seen), a quota does not.
    expect(controlDuring.cpus).toBeGreaterThan(Math.max(0.5, controlBase.cpus * 0.7));
    expect(after.cpus).toBeGreaterThan(Math.max(0.5, base.cpus * 0.7));
  });

  it('cpu-throttle: a process killed with SIGKILL leaves cpu.max, the reaper restores it', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/helpers/inject-child.ts', 'cpu-throttle', target.getId(), '{"cpus":0.3}'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (l) => l.startsWith('READY') && resolve());
      child.once('exit', (code) => reject(new Error(`injector exited with ${code} before it was ready`)));
    });
    expect(await v2Value(target, 'cpu.max')).toBe('30000 100000');
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    expect(await v2Value(target, 'cpu.max')).toBe('30000 100000'); // nothing undid it
    const { reverted, failed } = await new Journal().reap();
    console.info(
      `v2 reaped: ${reverted
        .filter((e) => e.pid === child.pid)
        .map((e) => e.description)
        .join('; ')}`,
    );
    expect(reverted.some((e) => e.pid === child.pid)).toBe(true);
    expect(failed).toEqual([]);
    expect(await v2Value(target, 'cpu.max')).toBe('max 100000');
  });

  it('cpu-stress places its workers in the target cgroup (cgroup.procs), charges their CPU to it, and ends them on revert', async () => {
    const before = await v2Processes(target);
    const usage0 = (await v2Keyed(target, 'cpu.stat')).usage_usec ?? 0;
    const fault = await chaos.inject({ kind: 'cpu-stress', target, workers: 2 });
    const during = await v2Processes(target);
    await sleep(3000);
    const stats = fault.stats();
    await fault.revert();
    const chargedMs = (((await v2Keyed(target, 'cpu.stat')).usage_usec ?? 0) - usage0) / 1000;
    const after = await v2Processes(target);
    const added = during.filter((p) => !before.includes(p));
    console.info(
      `v2 cpu-stress: added to the target's cgroup ${JSON.stringify(added)}; charged ${chargedMs.toFixed(0)} ms; ${JSON.stringify(stats)}`,
    );
    expect(added).toHaveLength(2);
    for (const p of added) expect(p).toMatch(/^\d+ .*node -e/);
    expect(stats.burnCpuMs).toBeGreaterThan(0);
    expect(chargedMs).toBeGreaterThanOrEqual(stats.burnCpuMs * 0.9);
    expect(after).toEqual(before);
  });

  it('memory-limit (memory.max): an allocation above it is OOM-killed and counted, the control and the target after revert are not', async () => {
    const events0 = (await v2Keyed(target, 'memory.events')).oom_kill ?? 0;
    const fault = await chaos.inject({ kind: 'memory-limit', target, bytes: 128 * MiB });
    expect(await v2Value(target, 'memory.max')).toBe(String(128 * MiB));
    const inTarget = await sh(target, ALLOC(256));
    const inControl = await sh(control, ALLOC(256));
    await sleep(500); // one sample of the 250 ms sampler
    const stats = fault.stats();
    await fault.revert();
    const events1 = (await v2Keyed(target, 'memory.events')).oom_kill ?? 0;
    const afterRevert = await sh(target, ALLOC(256));
    console.info(
      `v2 memory-limit 128 MiB: 256 MiB allocation exited ${inTarget.exitCode} in the target, ${inControl.exitCode} in the control, ` +
        `${afterRevert.exitCode} after revert; memory.events oom_kill ${events0} -> ${events1}; ${JSON.stringify(stats)}`,
    );
    expect(inTarget.exitCode).toBe(137);
    expect(stats.oomKills).toBeGreaterThanOrEqual(1);
    expect(events1 - events0).toBe(stats.oomKills);
    expect(stats.targetOomKilled).toBe(0);
    expect(inControl.exitCode).toBe(0);
    expect(afterRevert.exitCode).toBe(0);
    expect(await v2Limits(target)).toEqual(limits);
  });

  it('memory-stress raises the target memory.current by the bytes asked, and gives it back on revert', async () => {
    const bytes = 96 * MiB;
    const current = async () => Number(await v2Value(target, 'memory.current'));
    const [before, controlBefore] = [await current(), Number(await v2Value(control, 'memory.current'))];
    const fault = await chaos.inject({ kind: 'memory-stress', target, bytes });
    const during = await current();
    const stats = fault.stats();
    await fault.revert();
    await sleep(500);
    const after = await current();
    const controlAfter = Number(await v2Value(control, 'memory.current'));
    const mib = (n: number) => (n / MiB).toFixed(1);
    console.info(
      `v2 memory-stress 96 MiB: target memory.current ${mib(before)} -> ${mib(during)} -> ${mib(after)} MiB; control ${mib(controlBefore)} -> ${mib(controlAfter)} MiB; ${JSON.stringify(stats)}`,
    );
    expect(stats.allocatedBytes).toBe(bytes);
    expect(during - before).toBeGreaterThanOrEqual(bytes * 0.95);
    expect(during - before).toBeLessThan(bytes + 48 * MiB);
    expect(after - before).toBeLessThan(16 * MiB);
    expect(Math.abs(controlAfter - controlBefore)).toBeLessThan(16 * MiB);
  });

  it('io-throttle (io.max) holds direct AND buffered writes to the cap (within 15%), not the control, and lifts on revert', async () => {
    const cap = 2 * MiB;
    const fault = await chaos.inject({ kind: 'io-throttle', target, writeBytesPerSec: cap });
    const stats0 = fault.stats();
    const device = `${stats0.deviceMajor}:${stats0.deviceMinor}`;
    expect(await v2Value(target, 'io.max')).toBe(`${device} rbps=max wbps=${cap} riops=max wiops=max`);
    const direct = await dd(target, 'if=/dev/zero of=/tmp/v2-direct bs=256k count=32 oflag=direct');
    const buffered = await dd(target, 'if=/dev/zero of=/tmp/v2-buffered bs=256k count=32 conv=fsync');
    const controlBuffered = await dd(control, 'if=/dev/zero of=/tmp/v2-buffered bs=256k count=32 conv=fsync');
    const stats = fault.stats();
    await fault.revert();
    const after = await dd(target, 'if=/dev/zero of=/tmp/v2-after bs=256k count=32 conv=fsync');
    await sh(target, 'rm -f /tmp/v2-*');
    await sh(control, 'rm -f /tmp/v2-*');
    const mbs = (r: { rate: number }) => `${(r.rate / MiB).toFixed(2)} MiB/s`;
    console.info(
      `v2 io-throttle 2 MiB/s on ${device}: direct ${mbs(direct)}, buffered+fsync ${mbs(buffered)}; control buffered ${mbs(controlBuffered)}; ` +
        `after revert ${mbs(after)}; ${JSON.stringify(stats)}`,
    );
    for (const r of [direct, buffered]) {
      expect(r.rate).toBeGreaterThan(cap * 0.85);
      expect(r.rate).toBeLessThan(cap * 1.15);
    }
    expect(stats.bufferedWritesCapped).toBe(1);
    expect(stats.writeBytes).toBeGreaterThanOrEqual(16 * MiB);
    expect(controlBuffered.rate).toBeGreaterThan(cap * 3);
    expect(after.rate).toBeGreaterThan(cap * 3);
    expect(await v2Limits(target)).toEqual(limits);
  });
});
