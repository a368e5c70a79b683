import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { faultContract } from '../helpers/fault-contract.js';
import { chaos } from 'vitest-chaos';
import { ipOf, startHttpServer } from '../helpers/containers.js';
import { docker, httpGet, state } from '../helpers/processes.js';

const HANG_MS = 1000;

describe('container-pause', () => {
  const env = faultContract({
    kind: 'container-pause',
    start: (name) => startHttpServer(name),
    params: () => ({}),
    // Paused, and its server does not answer (the kernel still accepts the connection).
    measure: async (c) => ({ paused: (await state(c)).Paused, answers: (await httpGet(`http://${ipOf(c)}:8080/`, 1000)).status === 200 }),
    affected: (m) => expect(m).toEqual({ paused: true, answers: false }),
    normal: (m) => expect(m).toEqual({ paused: false, answers: true }),
    counts: (s) => expect(s.foundPaused).toBe(0),
    applied: async (c) => {
      const s = await state(c);
      return { running: s.Running, paused: s.Paused, pid: s.Pid };
    },
    // A paused container stays paused when the process dies: the journal entry lets the next run unpause it.
    sigkill: 'reaped by the next run',
    bad: [['an unknown field', { forMs: 100 }, /forMs is 100; expected no such field/]],
  });
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  beforeEach(() => {
    ({ target, control } = env);
  });
  const url = (c: StartedTestContainer) => `http://${ipOf(c)}:8080/`;
  afterAll(() =>
    docker
      .getContainer(env.target.getId())
      .unpause()
      .catch(() => undefined),
  );

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
    console.info(
      `pause: request hung ${answered.ms.toFixed(0)} ms, answered ${resumeMs.toFixed(0)} ms after revert (${(performance.now() - t0).toFixed(0)} ms in all)`,
    );
    await fault.revert(); // twice: quiet
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
});
