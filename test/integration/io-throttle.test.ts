import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { beforeEach, describe, expect, it } from 'vitest';
import { faultContract } from '../helpers/fault-contract.js';
import { chaos } from 'vitest-chaos';
import { sh, startHttpServer } from '../helpers/containers.js';
import { cgroupState, cgroupValue, dd, hostState, MiB, processesIn } from '../helpers/resources.js';

/** The host writing directly to its own disk: bytes per second by dd's clock. */
function hostDirectWrite(mib: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'io-throttle-host-'));
  try {
    const out = execFileSync('sh', ['-c', `dd if=/dev/zero of=${dir}/f bs=1M count=${mib} oflag=direct 2>&1`], { encoding: 'utf8' });
    const m = /(\d+) bytes .* copied, ([\d.]+) s/.exec(out);
    return Number(m![1]) / Number(m![2]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const within10 = (measured: number, rate: number) => {
  expect(measured).toBeGreaterThan(rate * 0.9);
  expect(measured).toBeLessThan(rate * 1.1);
};

describe('io-throttle', () => {
  const env = faultContract({
    kind: 'io-throttle',
    start: (name) => startHttpServer(name),
    applied: async (c) => ({ cgroups: await cgroupState(c), processes: await processesIn(c) }),
    host: () => hostState(),
    // Cgroup values, processes and files outlive the process: the journal entries written first let the next run undo them.
    sigkill: 'reaped by the next run',
    params: () => ({ writeBytesPerSec: MiB, readIops: 100 }),
    measure: async (c) => [
      await cgroupValue(c, 'blkio/blkio.throttle.write_bps_device'),
      await cgroupValue(c, 'blkio/blkio.throttle.read_iops_device'),
    ],
    affected: (caps) =>
      expect(caps).toEqual([expect.stringMatching(new RegExp(`^\\d+:\\d+ ${MiB}$`)), expect.stringMatching(/^\d+:\d+ 100$/)]),
    normal: (caps) => expect(caps).toEqual(['', '']),
    counts: (s) => expect(s.deviceMajor).toBeGreaterThan(0),
    bad: [
      ['no rate', {}, /readBytesPerSec is missing; expected at least one of readBytesPerSec, writeBytesPerSec, readIops, writeIops/],
      ['a zero rate', { writeBytesPerSec: 0 }, /writeBytesPerSec is 0; expected an integer number of bytes per second from 1/],
      ['fractional iops', { readIops: 2.5 }, /readIops is 2.5; expected an integer number of operations per second/],
      ['a relative path', { readIops: 10, path: 'tmp' }, /path is "tmp"; expected an absolute path in the container/],
      [
        'a path on no block device',
        { readIops: 10, path: '/dev/shm' },
        /path is "\/dev\/shm"; expected a path on a block device in the container/,
      ],
    ],
  });
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  beforeEach(() => {
    ({ target, control } = env);
  });

  it('caps direct reads and writes of the target at the rates (within 10%), and lifts the caps on revert', async () => {
    const [state, controlState, host] = [await cgroupState(target), await cgroupState(control), hostState()];
    const fault = await chaos.inject({ kind: 'io-throttle', target, writeBytesPerSec: 4 * MiB, readBytesPerSec: 8 * MiB });
    const device = `${fault.stats().deviceMajor}:${fault.stats().deviceMinor}`;
    expect(await cgroupValue(target, 'blkio/blkio.throttle.write_bps_device')).toBe(`${device} ${4 * MiB}`);
    // 4 s and 3 s of transfer at the caps: the first slice's burst is a small part of it.
    const write = await dd(target, 'if=/dev/zero of=/tmp/io bs=1M count=16 oflag=direct');
    const read = await dd(target, 'if=/tmp/io of=/dev/null bs=1M count=16 iflag=direct');
    const [controlWrite, hostWrite] = [await dd(control, 'if=/dev/zero of=/tmp/io bs=1M count=16 oflag=direct'), hostDirectWrite(16)];
    const stats = fault.stats();
    await fault.revert();
    const after = await dd(target, 'if=/dev/zero of=/tmp/io bs=1M count=16 oflag=direct');
    const afterRead = await dd(target, 'if=/tmp/io of=/dev/null bs=1M count=16 iflag=direct');
    await Promise.all([sh(target, 'rm -f /tmp/io'), sh(control, 'rm -f /tmp/io')]);
    const mbs = (r: number) => `${(r / MiB).toFixed(2)} MiB/s`;
    console.info(
      `io-throttle on ${device}: write ${mbs(write.rate)} (cap 4), read ${mbs(read.rate)} (cap 8); control write ${mbs(controlWrite.rate)}, ` +
        `host write ${mbs(hostWrite)}; after revert write ${mbs(after.rate)}, read ${mbs(afterRead.rate)}; ${JSON.stringify(stats)}`,
    );

    within10(write.rate, 4 * MiB);
    within10(read.rate, 8 * MiB);
    expect(stats.writeBytes).toBeGreaterThanOrEqual(16 * MiB);
    expect(stats.readBytes).toBeGreaterThanOrEqual(16 * MiB);
    expect(controlWrite.rate).toBeGreaterThan(5 * 4 * MiB);
    expect(hostWrite).toBeGreaterThan(5 * 4 * MiB);
    expect(after.rate).toBeGreaterThan(5 * 4 * MiB);
    expect(afterRead.rate).toBeGreaterThan(5 * 8 * MiB);
    expect(await cgroupState(target)).toEqual(state);
    expect(await cgroupState(control)).toEqual(controlState);
    expect(hostState()).toEqual(host);
  });

  it('caps operations per second (within 10%)', async () => {
    await dd(target, 'if=/dev/zero of=/tmp/io-r bs=4k count=300 oflag=direct');
    const fault = await chaos.inject({ kind: 'io-throttle', target, writeIops: 50, readIops: 100 });
    // 3 s each at the caps
    const write = await dd(target, 'if=/dev/zero of=/tmp/io bs=4k count=150 oflag=direct');
    const read = await dd(target, 'if=/tmp/io-r of=/dev/null bs=4k count=300 iflag=direct');
    const stats = fault.stats();
    await fault.revert();
    await sh(target, 'rm -f /tmp/io /tmp/io-r');
    const wIops = 150 / write.seconds;
    const rIops = 300 / read.seconds;
    console.info(`io-throttle iops: write ${wIops.toFixed(1)}/s (cap 50), read ${rIops.toFixed(1)}/s (cap 100); ${JSON.stringify(stats)}`);
    within10(wIops, 50);
    within10(rIops, 100);
    expect(stats.writeOps).toBeGreaterThanOrEqual(150);
  });

  it('does not cap buffered writes (cgroup v1 sees them only when the kernel flushes them)', async () => {
    const fault = await chaos.inject({ kind: 'io-throttle', target, writeBytesPerSec: 1 * MiB });
    const buffered = await dd(target, 'if=/dev/zero of=/tmp/io bs=1M count=16');
    await fault.revert();
    await sh(target, 'rm -f /tmp/io');
    console.info(`io-throttle 1 MiB/s, buffered write: ${(buffered.rate / MiB).toFixed(1)} MiB/s`);
    expect(buffered.rate).toBeGreaterThan(4 * MiB);
  });

  it('applies the tightest of two, reverts in any order, twice, and after the target is gone', async () => {
    const a = await chaos.inject({ kind: 'io-throttle', target, writeBytesPerSec: 8 * MiB });
    const b = await chaos.inject({ kind: 'io-throttle', target, writeBytesPerSec: 2 * MiB, readIops: 10 });
    const device = `${a.stats().deviceMajor}:${a.stats().deviceMinor}`;
    expect(await cgroupValue(target, 'blkio/blkio.throttle.write_bps_device')).toBe(`${device} ${2 * MiB}`);
    await b.revert();
    expect(await cgroupValue(target, 'blkio/blkio.throttle.write_bps_device')).toBe(`${device} ${8 * MiB}`);
    expect(await cgroupValue(target, 'blkio/blkio.throttle.read_iops_device')).toBe('');
    await b.revert();
    await a.revert();
    await a.revert();
    expect(await cgroupValue(target, 'blkio/blkio.throttle.write_bps_device')).toBe('');

    const gone = await startHttpServer('io-gone');
    const c = await chaos.inject({ kind: 'io-throttle', target: gone, readBytesPerSec: MiB });
    await gone.stop({ timeout: 0 });
    await expect(c.revert()).resolves.toBeUndefined();
  });
});
