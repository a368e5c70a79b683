import Docker from 'dockerode';
import type { StartedTestContainer } from 'testcontainers';
import { beforeEach, describe, expect, it } from 'vitest';
import { faultContract } from '../helpers/fault-contract.js';
import { chaos } from 'vitest-chaos';
import { startHttpServer } from '../helpers/containers.js';
import { busyLoop, cgroupState, cgroupValue, hostState, processesIn } from '../helpers/resources.js';

describe('cpu-throttle', () => {
  const env = faultContract({
    kind: 'cpu-throttle',
    start: (name) => startHttpServer(name),
    applied: async (c) => ({ cgroups: await cgroupState(c), processes: await processesIn(c) }),
    host: () => hostState(),
    // Cgroup values, processes and files outlive the process: the journal entries written first let the next run undo them.
    sigkill: 'reaped by the next run',
    params: () => ({ cpus: 0.2 }),
    measure: (c) => cgroupValue(c, 'cpu/cpu.cfs_quota_us'),
    affected: (quota) => expect(quota).toBe('20000'),
    normal: (quota) => expect(quota).toBe('-1'),
    counts: (s) => expect(s.quotaUs).toBe(20000),
    bad: [
      ['cpus 0', { cpus: 0 }, /cpus is 0; expected a number of CPUs from 0.01 to 1024/],
      ['negative cpus', { cpus: -1 }, /cpus is -1; expected a number of CPUs/],
      ['cpus as a string', { cpus: '0.5' }, /cpus is "0.5"; expected a number of CPUs/],
      ['no cpus', {}, /cpus is missing; expected a number of CPUs/],
      ['an unknown field', { cpus: 0.5, quota: 1 }, /quota is 1; expected no such field/],
    ],
  });
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  beforeEach(() => {
    ({ target, control } = env);
  });

  it('caps the CPU time the target gets at the quota, and lifts it on revert', async () => {
    const [before, controlBefore, host] = [await cgroupState(target), await cgroupState(control), hostState()];
    expect(before['cpu/cpu.cfs_quota_us']).toBe('-1');
    const baseline = await busyLoop(target, 2000);

    const fault = await chaos.inject({ kind: 'cpu-throttle', target, cpus: 0.2 });
    expect(await cgroupValue(target, 'cpu/cpu.cfs_quota_us')).toBe('20000');
    const [during, controlDuring] = await Promise.all([busyLoop(target, 3000), busyLoop(control, 3000)]);
    const stats = fault.stats();
    await fault.revert();
    const after = await busyLoop(target, 2000);
    console.info(
      `cpu-throttle 0.2: target used ${during.cpus.toFixed(3)} CPUs (baseline ${baseline.cpus.toFixed(3)}, after ${after.cpus.toFixed(3)}), ` +
        `loop ${(during.iterations / 3).toFixed(0)}/s vs ${(baseline.iterations / 2).toFixed(0)}/s; control ${controlDuring.cpus.toFixed(3)} CPUs; ${JSON.stringify(stats)}`,
    );

    // The quota is a hard cap per 100 ms period, whatever else the machine does.
    expect(during.cpus).toBeLessThanOrEqual(0.22);
    expect(during.cpus).toBeGreaterThan(0.1);
    expect(stats.throttledPeriods).toBeGreaterThan(10);
    expect(stats.quotaUs).toBe(20000);
    // The target's own work slows down...
    expect(during.iterations / 3).toBeLessThan((0.6 * Math.min(baseline.iterations, after.iterations)) / 2);
    // ...the control's does not: it is not capped (it used well over the target's cap).
    expect(controlDuring.cpus).toBeGreaterThan(0.3);
    expect(after.cpus).toBeGreaterThan(0.3);
    expect(await cgroupState(target)).toEqual(before);
    expect(await cgroupState(control)).toEqual(controlBefore);
    expect(hostState()).toEqual(host);
  });

  it('applies the tightest of two faults, keeps the other after one is reverted, and reverts twice quietly', async () => {
    const a = await chaos.inject({ kind: 'cpu-throttle', target, cpus: 0.5 });
    const b = await chaos.inject({ kind: 'cpu-throttle', target, cpus: 0.2 });
    expect(await cgroupValue(target, 'cpu/cpu.cfs_quota_us')).toBe('20000');
    await a.revert(); // reverted out of order: b still holds
    expect(await cgroupValue(target, 'cpu/cpu.cfs_quota_us')).toBe('20000');
    const c = await chaos.inject({ kind: 'cpu-throttle', target, cpus: 0.2 }); // the same fault twice
    await b.revert();
    expect(await cgroupValue(target, 'cpu/cpu.cfs_quota_us')).toBe('20000');
    await c.revert();
    await c.revert();
    await a.revert();
    expect(await cgroupValue(target, 'cpu/cpu.cfs_quota_us')).toBe('-1');
  });

  it('keeps a tighter quota that the container already had', async () => {
    // Last: `docker update --cpus 0` cannot clear a quota again.
    await new Docker().getContainer(target.getId()).update({ NanoCpus: 100_000_000 }); // 0.1 CPU
    expect(await cgroupValue(target, 'cpu/cpu.cfs_quota_us')).toBe('10000');
    const fault = await chaos.inject({ kind: 'cpu-throttle', target, cpus: 0.5 });
    expect(await cgroupValue(target, 'cpu/cpu.cfs_quota_us')).toBe('10000');
    await fault.revert();
    expect(await cgroupValue(target, 'cpu/cpu.cfs_quota_us')).toBe('10000');
  });
});
