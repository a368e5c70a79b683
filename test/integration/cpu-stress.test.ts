import { readFileSync } from 'node:fs';
import type { StartedTestContainer } from 'testcontainers';
import { beforeEach, describe, expect, it } from 'vitest';
import { faultContract } from '../helpers/fault-contract.js';
import { chaos } from 'vitest-chaos';
import { startHttpServer } from '../helpers/containers.js';
import { busyLoop, cgroupState, cgroupValue, hostState, processesIn } from '../helpers/resources.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Processes added to the container since `before` (host pids). */
function added(before: string[], now: string[]): number[] {
  return now.filter((p) => !before.includes(p)).map((p) => Number(p.split(' ')[0]));
}

/** Time the process was running or waiting to run, in ms (/proc/PID/schedstat: on-CPU ns, run-queue ns). */
function runnableMs(pid: number): number {
  const [cpu, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ').map(Number) as [number, number];
  return (cpu + wait) / 1e6;
}

describe('cpu-stress', () => {
  const env = faultContract({
    kind: 'cpu-stress',
    start: (name) => startHttpServer(name),
    applied: async (c) => ({ cgroups: await cgroupState(c), processes: await processesIn(c) }),
    host: () => hostState(),
    // Cgroup values, processes and files outlive the process: the journal entries written first let the next run undo them.
    sigkill: 'reaped by the next run',
    params: () => ({ workers: 2, loadPercent: 50 }),
    measure: async (c) => (await processesIn(c)).length,
    affected: (n, base) => expect(n).toBeGreaterThanOrEqual(base + 2),
    normal: (n, base) => expect(n).toBe(base),
    counts: (s) => expect(s.workersRunning).toBe(2),
    bad: [
      ['workers 0', { workers: 0 }, /workers is 0; expected an integer number of busy processes from 1 to 64/],
      ['fractional workers', { workers: 1.5 }, /workers is 1.5; expected an integer number of busy processes/],
      ['loadPercent 0', { loadPercent: 0 }, /loadPercent is 0; expected a percentage of each 100 ms that a worker is busy, from 1 to 100/],
      ['loadPercent 101', { loadPercent: 101 }, /loadPercent is 101; expected a percentage/],
      ['an unknown field', { threads: 2 }, /threads is 2; expected no such field/],
    ],
  });
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  beforeEach(() => {
    ({ target, control } = env);
  });

  it('slows the target down with busy processes in its cgroups, not the control, and ends them on revert', async () => {
    const [procsBefore, state, controlState, host] = [
      await processesIn(target),
      await cgroupState(target),
      await cgroupState(control),
      hostState(),
    ];
    // Target and control loop side by side, so the rest of the machine weighs on both alike.
    const [base, controlBase] = await Promise.all([busyLoop(target, 3000), busyLoop(control, 3000)]);

    const usage0 = Number(await cgroupValue(target, 'cpuacct/cpuacct.usage'));
    const fault = await chaos.inject({ kind: 'cpu-stress', target, workers: 4 });
    const burners = added(procsBefore, await processesIn(target));
    expect(burners).toHaveLength(4);
    // In the target's v1 cpu cgroup too (as the container sees it, pids of its namespace).
    const inCpuCgroup = (await cgroupValue(target, 'cpu/cgroup.procs')).split('\n').length;
    const [during, controlDuring] = await Promise.all([busyLoop(target, 3000), busyLoop(control, 3000)]);
    const stats = fault.stats();
    await fault.revert();
    const chargedMs = (Number(await cgroupValue(target, 'cpuacct/cpuacct.usage')) - usage0) / 1e6;
    const [after, controlAfter] = await Promise.all([busyLoop(target, 3000), busyLoop(control, 3000)]);
    const share = (t: { iterations: number }, c: { iterations: number }) => t.iterations / c.iterations;
    console.info(
      `cpu-stress 4 workers: target/control loop ${share(base, controlBase).toFixed(2)} before, ${share(during, controlDuring).toFixed(2)} during, ` +
        `${share(after, controlAfter).toFixed(2)} after; target cgroup ${base.cpus.toFixed(2)} -> ${during.cpus.toFixed(2)} CPUs; ` +
        `control loop ${controlBase.iterations} -> ${controlDuring.iterations}; charged to the target ${chargedMs.toFixed(0)} ms; ${JSON.stringify(stats)}`,
    );

    expect(inCpuCgroup).toBeGreaterThanOrEqual(1 + 4 + 1); // the server, the workers, the reading shell
    // The target's loop shares its cgroup's CPU with 4 workers, while the control's loop
    // keeps its cgroup's share: measured side by side, so the rest of the machine (other
    // test runs) weighs on both alike, the target falls well behind the control.
    const reference = (share(base, controlBase) + share(after, controlAfter)) / 2;
    expect(share(during, controlDuring)).toBeLessThan(0.6 * reference);
    expect(share(after, controlAfter)).toBeGreaterThan(0.6 * share(base, controlBase));
    // The workers' CPU time is charged to the target's cgroup.
    expect(stats.burnCpuMs).toBeGreaterThan(1000);
    expect(chargedMs).toBeGreaterThan(stats.burnCpuMs as number);
    expect(stats.workersRunning).toBe(4);
    // Gone: no worker left, in the container or on the host.
    expect(await processesIn(target)).toEqual(procsBefore);
    for (const pid of burners) expect(() => readFileSync(`/proc/${pid}/stat`)).toThrow();
    expect(await cgroupState(target)).toEqual(state);
    expect(await cgroupState(control)).toEqual(controlState);
    expect(hostState()).toEqual(host);
  });

  it('keeps each worker busy loadPercent of the time', async () => {
    const procsBefore = await processesIn(target);
    const fault = await chaos.inject({ kind: 'cpu-stress', target, workers: 1, loadPercent: 30 });
    const [pid] = added(procsBefore, await processesIn(target)) as [number];
    const r0 = runnableMs(pid);
    const t0 = performance.now();
    await sleep(3000);
    const duty = (runnableMs(pid) - r0) / (performance.now() - t0);
    const stats = fault.stats();
    await fault.revert();
    console.info(
      `cpu-stress loadPercent 30: worker runnable ${(duty * 100).toFixed(1)}% of the time, used ${stats.burnCpus?.toFixed(3)} CPUs`,
    );
    // Busy (on a CPU or waiting for one) 30% of wall time, however busy the machine is.
    expect(duty).toBeGreaterThan(0.26);
    expect(duty).toBeLessThan(0.36);
    expect(stats.burnCpus).toBeLessThanOrEqual(0.36);
    expect(await processesIn(target)).toEqual(procsBefore);
  });
});
