// The reaper undoes what a SIGKILLed run left, newest first: a file written by
// disk-fill into a container that container-pause then froze can only be
// removed once the container runs again. An undo that fails keeps its record
// and is reported as failed, never as reverted.
import { existsSync, readdirSync } from 'node:fs';
import type { StartedTestContainer } from 'testcontainers';
import { describe, expect, it } from 'vitest';
import { createChaos } from 'vitest-chaos';
import { Journal } from '../../src/journal/journal.js';
import { sh } from '../helpers/containers.js';
import { sigkill, sigkillTargets, startInjector } from '../helpers/injector.js';
import { docker, state } from '../helpers/processes.js';

const MiB = 1 << 20;

/** The container's /tmp as the host sees it (overlay2's upper dir): readable while it is paused. */
async function tmpOnHost(c: StartedTestContainer): Promise<string> {
  const info = await docker.getContainer(c.getId()).inspect();
  return `${(info.GraphDriver.Data as Record<string, string>).UpperDir}/tmp`;
}

describe('the reaper, after a SIGKILLed run', () => {
  const env = sigkillTargets('reap-order');

  it('undoes newest first: unpauses the container, then removes the file disk-fill wrote', async () => {
    const { target, control } = env;
    const child = await startInjector('sequence', target, [
      { kind: 'disk-fill', bytes: 10 * MiB, path: '/tmp' },
      { kind: 'container-pause' },
    ] as never);
    const file = `${await tmpOnHost(target)}/vitest-chaos-disk-fill-${child.pid}-1`;
    expect(existsSync(file)).toBe(true);
    expect((await state(target)).Paused).toBe(true);
    await sigkill(child);
    expect((await state(target)).Paused).toBe(true); // nothing undid it yet

    const journal = new Journal();
    const { reverted, failed } = await journal.reap();
    const name = target.getName().replace(/^\//, '');
    expect(failed.filter((f) => f.entry.pid === child.pid)).toEqual([]);
    expect(reverted.filter((e) => e.pid === child.pid).map((e) => e.description.replace(/ .*/, ''))).toEqual([
      'container-pause',
      'disk-fill',
    ]);
    expect((await state(target)).Paused).toBe(false);
    expect(existsSync(file)).toBe(false);
    expect((await sh(target, `ls /tmp | grep -c vitest-chaos-disk-fill-${child.pid} || true`)).output.trim()).toBe('0');
    expect(journal.entries().filter((e) => e.pid === child.pid)).toEqual([]);
    expect(reverted.find((e) => e.description.startsWith('container-pause'))?.description).toBe(`container-pause on ${name}`);
    expect((await state(control)).Paused).toBe(false);
  });

  it('chaos.revertAll() in the living process undoes newest first too', async () => {
    const { target } = env;
    const chaos = createChaos({ seed: 4, progress: false });
    await chaos.inject({ kind: 'disk-fill', target, bytes: 10 * MiB, path: '/tmp' });
    await chaos.inject({ kind: 'container-pause', target });
    const tmp = await tmpOnHost(target);
    const ours = () => readdirSync(tmp).filter((f) => f.startsWith(`vitest-chaos-disk-fill-${process.pid}-`));
    expect(ours()).toHaveLength(1);
    expect((await state(target)).Paused).toBe(true);
    await chaos.revertAll();
    expect((await state(target)).Paused).toBe(false);
    expect(ours()).toEqual([]);
    expect(new Journal().entries().filter((e) => e.pid === process.pid)).toEqual([]);
  });

  it('keeps the record of an undo that failed (the container paused by someone else: 409) and reports it, until it can run', async () => {
    const { target } = env;
    const child = await startInjector('disk-fill', target, { bytes: 10 * MiB, path: '/tmp' });
    const file = `${await tmpOnHost(target)}/vitest-chaos-disk-fill-${child.pid}-1`;
    expect(existsSync(file)).toBe(true);
    await sigkill(child);
    await docker.getContainer(target.getId()).pause();
    try {
      const journal = new Journal();
      const first = await journal.reap();
      expect(first.reverted.filter((e) => e.pid === child.pid)).toEqual([]);
      const mine = first.failed.filter((f) => f.entry.pid === child.pid);
      expect(mine.map((f) => f.entry.description)).toEqual([
        expect.stringMatching(/^disk-fill 10485760 bytes at \/tmp\/vitest-chaos-disk-fill-/),
      ]);
      expect(mine[0]!.error).toMatch(/409|paused/i);
      expect(journal.entries().filter((e) => e.pid === child.pid)).toHaveLength(1);
      expect(existsSync(file)).toBe(true);

      await docker.getContainer(target.getId()).unpause();
      const second = await journal.reap();
      expect(second.reverted.filter((e) => e.pid === child.pid)).toHaveLength(1);
      expect(existsSync(file)).toBe(false);
      expect(journal.entries().filter((e) => e.pid === child.pid)).toEqual([]);
    } finally {
      await docker
        .getContainer(target.getId())
        .unpause()
        .catch(() => undefined);
    }
  });
});
