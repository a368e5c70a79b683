import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { faultContract } from '../helpers/fault-contract.js';
import { chaos, ChaosSpecError, type FaultSpec } from 'vitest-chaos';
import { ipOf, startHttpServer, stopAll } from '../helpers/containers.js';
import { docker, httpGet, removeQuietly, state } from '../helpers/processes.js';

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
    bad: [
      ['an unknown field', { forMs: 100 }, /forMs is 100; expected no such field/],
    ],
  });
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  beforeEach(() => {
    ({ target, control } = env);
  });
  const url = (c: StartedTestContainer) => `http://${ipOf(c)}:8080/`;
  afterAll(() => docker.getContainer(env.target.getId()).unpause().catch(() => undefined));

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

  it('refuses bad parameters and pauses nothing', async () => {
    const err = await chaos
      .inject({ kind: 'container-pause', target, forMs: 100 } as unknown as FaultSpec)
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ChaosSpecError);
    expect((err as Error).message).toMatch(/forMs is 100; expected no such field/);
    expect((await state(target)).Paused).toBe(false);
  });
});
