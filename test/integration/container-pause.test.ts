import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, ChaosSpecError, type FaultSpec } from 'vitest-chaos';
import { ipOf, startHttpServer, stopAll } from '../helpers/containers.js';
import { docker, httpGet, removeQuietly, state } from '../helpers/processes.js';

const HANG_MS = 1000;

describe('container-pause', () => {
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  const url = (c: StartedTestContainer) => `http://${ipOf(c)}:8080/`;

  beforeAll(async () => {
    [target, control] = await Promise.all([startHttpServer('pause-target'), startHttpServer('pause-control')]);
  });
  afterAll(async () => {
    await docker.getContainer(target.getId()).unpause().catch(() => undefined);
    await stopAll(target, control);
  });

  it('freezes the target: requests hang while paused and are answered after revert; the control answers throughout', async () => {
    const before = await httpGet(url(target));
    expect(before.status).toBe(200);

    const fault = await chaos.inject({ kind: 'container-pause', target });
    expect((await state(target)).Paused).toBe(true);
    const t0 = performance.now();
    const inFlight = httpGet(url(target), 10_000);
    let settled = false;
    void inFlight.then(() => (settled = true));
    const onControl = await httpGet(url(control));
    await new Promise((r) => setTimeout(r, HANG_MS));
    expect(settled).toBe(false); // connected (the kernel still accepts), but nobody answers
    expect(onControl.status).toBe(200);
    expect(onControl.ms).toBeLessThan(HANG_MS);
    expect((await state(control)).Paused).toBe(false);
    expect(fault.stats()).toMatchObject({ paused: 1, foundPaused: 0 });

    const revertedAt = performance.now();
    await fault.revert();
    const answered = await inFlight;
    const resumeMs = performance.now() - revertedAt;
    expect(answered.status).toBe(200);
    expect(answered.ms).toBeGreaterThanOrEqual(HANG_MS);
    expect(resumeMs).toBeLessThan(2000);
    expect((await state(target)).Paused).toBe(false);
    expect(fault.stats().paused).toBe(0);
    expect(fault.stats().pausedMs).toBeGreaterThanOrEqual(HANG_MS);
    const after = await httpGet(url(target));
    expect(after.status).toBe(200);
    expect(after.ms).toBeLessThan(HANG_MS);
    console.info(`pause: request hung ${answered.ms.toFixed(0)} ms, answered ${resumeMs.toFixed(0)} ms after revert (${(performance.now() - t0).toFixed(0)} ms in all)`);
    await fault.revert(); // twice: quiet
  });

  it('applied twice, the container stays paused until the last one is reverted', async () => {
    const a = await chaos.inject({ kind: 'container-pause', target });
    const b = await chaos.inject({ kind: 'container-pause', target });
    expect(b.stats()).toMatchObject({ paused: 1, foundPaused: 0 });
    await a.revert();
    expect((await state(target)).Paused).toBe(true);
    await b.revert();
    await b.revert();
    expect((await state(target)).Paused).toBe(false);
    expect((await httpGet(url(target))).status).toBe(200);
  });

  it('leaves a container paused by someone else as it found it', async () => {
    await docker.getContainer(target.getId()).pause();
    try {
      const f = await chaos.inject({ kind: 'container-pause', target });
      expect(f.stats().foundPaused).toBe(1);
      await f.revert();
      expect((await state(target)).Paused).toBe(true);
    } finally {
      await docker.getContainer(target.getId()).unpause();
    }
  });

  it('reverts quietly after the container is gone', async () => {
    const doomed = await startHttpServer('pause-gone');
    const f = await chaos.inject({ kind: 'container-pause', target: doomed });
    await removeQuietly(doomed);
    await f.revert();
    await f.revert();
    expect(f.active).toBe(false);
  });

  it('refuses bad parameters and pauses nothing', async () => {
    const err = await chaos
      .inject({ kind: 'container-pause', target, forMs: 100 } as unknown as FaultSpec)
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ChaosSpecError);
    expect((err as Error).message).toMatch(/forMs is 100; expected no such field/);
    expect((await state(target)).Paused).toBe(false);
  });
});
