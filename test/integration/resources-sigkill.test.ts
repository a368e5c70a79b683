// Resource faults change things that outlive the process that made them (cgroup
// values, processes, files). Killed with SIGKILL, an injector leaves them; the
// journal it wrote first lets the next run's reaper put everything back.
import { existsSync, readFileSync } from 'node:fs';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Journal } from '../../src/journal/journal.js';
import { startHttpServer, stopAll } from '../helpers/containers.js';
import { killInjectors, sigkill, startInjector } from '../helpers/injector.js';
import { cgroupState, hostState, MiB, processesIn } from '../helpers/resources.js';
import { parentPid } from '../helpers/processes.js';
import { cgroupDirOf } from '../helpers/target-info.js';

function stateOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] as string;
  } catch {
    return 'gone';
  }
}

const FAULTS = [
  { kind: 'cpu-throttle', cpus: 0.2 },
  { kind: 'cpu-stress', workers: 2, loadPercent: 50 },
  { kind: 'memory-stress', bytes: 64 * MiB },
  { kind: 'memory-limit', bytes: 512 * MiB },
  { kind: 'io-throttle', writeBytesPerSec: MiB, readIops: 100 },
  { kind: 'disk-fill', bytes: 64 * MiB },
];

describe('resource faults of a test process killed with SIGKILL', () => {
  let target: StartedTestContainer;
  beforeAll(async () => {
    target = await startHttpServer('resources-kill');
  });
  afterAll(async () => {
    killInjectors();
    await new Journal().reap(); // what a failed run of this test left
    await stopAll(target);
  });

  // All six faults held by one injector: one node start-up, not six (each takes seconds on a loaded machine).
  it('are all put back by the next run: quota, memory limit, blkio caps, processes, files', { timeout: 120_000 }, async () => {
    const [state, procs, host] = [await cgroupState(target), await processesIn(target), hostState()];
    const child = await startInjector('sequence', target, FAULTS);

    const during = await cgroupState(target);
    const added = (await processesIn(target)).filter((p) => !procs.includes(p));
    expect(during['cpu/cpu.cfs_quota_us']).toBe('20000');
    expect(during['memory/memory.limit_in_bytes']).toBe(String(512 * MiB));
    expect(during['blkio/blkio.throttle.write_bps_device']).toMatch(new RegExp(`^\\d+:\\d+ ${MiB}$`));
    expect(during['blkio/blkio.throttle.read_iops_device']).toMatch(/^\d+:\d+ 100$/);
    expect(during.tmp).toMatch(/vitest-chaos-disk-fill-\d+-1/);
    expect(added).toHaveLength(3); // 2 workers, 1 memory hog

    // A worker that cannot notice that its parent died (stopped): only the journal can end it.
    // (Its nsenter, which waits for it outside the container, stops itself too.)
    const stopped = Number(added[0]!.split(' ')[0]);
    const waiters = added.map((p) => parentPid(Number(p.split(' ')[0])) ?? -1);
    expect(waiters).not.toContain(-1); // each worker's waiter was there
    process.kill(stopped, 'SIGSTOP');
    await sigkill(child);
    // The others exit when their stdin closes; everything else stays until reaped.
    await expect.poll(async () => (await processesIn(target)).length, { timeout: 3000 }).toBe(procs.length + 1);
    expect(existsSync(`/proc/${stopped}`)).toBe(true);

    const { reverted, failed, refused } = await new Journal().reap();
    const ours = reverted.filter((e) => e.pid === child.pid);
    console.info(`reaped: ${ours.map((e) => e.description).join('; ')}`);
    expect(ours.length).toBeGreaterThanOrEqual(FAULTS.length);
    expect(failed.filter((f) => f.entry.pid === child.pid)).toEqual([]);
    expect(refused.filter((r) => r.pid === child.pid)).toEqual([]);

    await expect.poll(() => processesIn(target), { timeout: 3000 }).toEqual(procs);
    expect(await cgroupState(target)).toEqual(state);
    expect(hostState()).toEqual(host);
    // No stopped nsenter left on the host, holding an unreaped zombie in the container...
    expect(waiters.map(stateOf).filter((s) => s !== 'gone' && s !== 'Z')).toEqual([]);
    // ...so the container can still exit, and its cgroups go with it.
    const dir = await cgroupDirOf(target);
    const t0 = performance.now();
    await target.stop({ timeout: 0 });
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(existsSync(dir)).toBe(false);
  });
});
