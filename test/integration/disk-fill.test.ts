import type { StartedTestContainer } from 'testcontainers';
import { beforeEach, describe, expect, it } from 'vitest';
import { faultContract } from '../helpers/fault-contract.js';
import { chaos } from 'vitest-chaos';
import { sh, startHttpServer } from '../helpers/containers.js';
import { cgroupState, hostState, MiB, processesIn } from '../helpers/resources.js';

/** Space of the filesystem holding `dir` in the container (df) and bytes under it (du), from inside. */
async function space(
  c: StartedTestContainer,
  dir: string,
): Promise<{ usedBytes: number; availBytes: number; duBytes: number; files: string }> {
  const { output, exitCode } = await sh(c, `df -B1 -P ${dir} | tail -n 1; du -s -B1 ${dir}; ls -A ${dir} | tr '\\n' ' '`);
  if (exitCode !== 0) throw new Error(`df/du in ${c.getName()} failed: ${output}`);
  const [dfLine = '', duLine = '', files = ''] = output.split('\n');
  const df = dfLine.trim().split(/\s+/);
  return { usedBytes: Number(df[2]), availBytes: Number(df[3]), duBytes: Number(duLine.split(/\s/)[0]), files: files.trim() };
}

describe('disk-fill', () => {
  const env = faultContract({
    kind: 'disk-fill',
    start: (name) => startHttpServer(name),
    applied: async (c) => ({ cgroups: await cgroupState(c), processes: await processesIn(c) }),
    host: () => hostState(),
    // Cgroup values, processes and files outlive the process: the journal entries written first let the next run undo them.
    sigkill: 'reaped by the next run',
    params: () => ({ bytes: 64 * MiB }),
    measure: async (c) => (await space(c, '/tmp')).duBytes,
    affected: (du, base) => expect(du - base).toBeGreaterThanOrEqual(64 * MiB),
    normal: (du, base) => expect(Math.abs(du - base)).toBeLessThan(MiB),
    counts: (s) => expect(s.bytes).toBe(64 * MiB),
    bad: [
      ['no bytes', {}, /bytes is missing; expected an integer number of bytes from 1 to 2\^50/],
      ['zero bytes', { bytes: 0 }, /bytes is 0; expected an integer number of bytes/],
      ['a relative path', { bytes: MiB, path: 'tmp' }, /path is "tmp"; expected an absolute path of a directory in the container/],
      [
        'a missing directory',
        { bytes: MiB, path: '/no/such/dir' },
        /path is "\/no\/such\/dir"; expected an absolute path of a directory in the container \(.*can't cd/,
      ],
      [
        'more than is free',
        { bytes: 2 ** 50 },
        /bytes is 1125899906842624; expected at most the free space of \/tmp in [\w-]+ \(\d+ bytes\)/,
      ],
    ],
  });
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  beforeEach(() => {
    ({ target, control } = env);
  });

  it('takes the bytes from the target filesystem while in force, and gives them back on revert', async () => {
    const [state, controlState, host] = [await cgroupState(target), await cgroupState(control), hostState()];
    const [before, controlBefore] = [await space(target, '/tmp'), await space(control, '/tmp')];

    const fault = await chaos.inject({ kind: 'disk-fill', target, bytes: 1024 * MiB });
    const during = await space(target, '/tmp');
    const controlDuring = await space(control, '/tmp');
    const stats = fault.stats();
    await fault.revert();
    const after = await space(target, '/tmp');
    const mib = (b: number) => `${(b / MiB).toFixed(0)} MiB`;
    console.info(
      `disk-fill 1 GiB: du /tmp ${mib(before.duBytes)} -> ${mib(during.duBytes)} -> ${mib(after.duBytes)}; ` +
        `df used +${mib(during.usedBytes - before.usedBytes)}, then ${mib(after.usedBytes - before.usedBytes)}; files during: ${during.files}; ${JSON.stringify(stats)}`,
    );

    // The file holds exactly the bytes (du counts allocated blocks)...
    expect(during.duBytes - before.duBytes).toBeGreaterThanOrEqual(1024 * MiB);
    expect(during.duBytes - before.duBytes).toBeLessThan(1024 * MiB + MiB);
    expect(during.files).toMatch(/^vitest-chaos-disk-fill-\d+-\d+$/);
    // ...and the filesystem lost them (it is the host's disk: other writers move it a little too).
    expect(during.usedBytes - before.usedBytes).toBeGreaterThan(0.75 * 1024 * MiB);
    expect(during.usedBytes - before.usedBytes).toBeLessThan(1.25 * 1024 * MiB);
    expect(after.duBytes).toBe(before.duBytes);
    expect(after.files).toBe(before.files);
    expect(Math.abs(after.usedBytes - before.usedBytes)).toBeLessThan(0.25 * 1024 * MiB);
    expect(controlDuring.files).toBe(controlBefore.files);
    expect(controlDuring.duBytes).toBe(controlBefore.duBytes);
    expect(await cgroupState(target)).toEqual(state);
    expect(await cgroupState(control)).toEqual(controlState);
    expect(hostState()).toEqual(host);
  });

  it('fills the directory given as path', async () => {
    const before = await space(target, '/var/tmp');
    const fault = await chaos.inject({ kind: 'disk-fill', target, bytes: 64 * MiB, path: '/var/tmp' });
    const during = await space(target, '/var/tmp');
    await fault.revert();
    expect(during.duBytes - before.duBytes).toBeGreaterThanOrEqual(64 * MiB);
    expect(during.files).toMatch(/vitest-chaos-disk-fill-/);
    expect(await space(target, '/var/tmp')).toMatchObject({ files: before.files, duBytes: before.duBytes });
  });
});
