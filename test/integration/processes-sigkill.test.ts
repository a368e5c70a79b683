// A paused or stopped container does not come back by itself when the process
// holding the fault dies: the journal entry written before the change lets the
// next run's reaper undo it.
import { describe, expect, it } from 'vitest';
import { createChaos } from 'vitest-chaos';
import { Journal } from '../../src/journal/journal.js';
import { sigkill, sigkillTargets, startInjector } from '../helpers/injector.js';
import { currentIp, httpGet, serverAnswers, state } from '../helpers/processes.js';

describe('a process holding a process fault, killed with SIGKILL', () => {
  const env = sigkillTargets('proc-kill');

  it('leaves the target paused until the reaper unpauses it', async () => {
    const { target, control } = env;
    const ip = await currentIp(target);
    const child = await startInjector('container-pause', target, {});
    expect((await state(target)).Paused).toBe(true);
    await sigkill(child);
    // Nothing undid it: still frozen, requests hang.
    expect((await state(target)).Paused).toBe(true);
    const hung = await httpGet(`http://${ip}:8080/`, 1000);
    expect(hung.status).toBe(null);
    expect(hung.error).toMatch(/no answer within 1000 ms/);

    const { reverted } = await new Journal().reap();
    expect(reverted.map((e) => e.description)).toContain(`container-pause on ${target.getName().replace(/^\//, '')}`);
    expect((await state(target)).Paused).toBe(false);
    const answered = await httpGet(`http://${ip}:8080/`);
    expect(answered.status).toBe(200);
    expect((await state(control)).Paused).toBe(false);
  });

  it("leaves the target stopped until a new run's first inject starts it again", async () => {
    const { target, control } = env;
    const before = await state(target);
    const controlPid = (await state(control)).Pid;
    const child = await startInjector('container-stop', target, {});
    expect((await state(target)).Running).toBe(false);
    await sigkill(child);
    await new Promise((r) => setTimeout(r, 500));
    expect((await state(target)).Running).toBe(false);

    // A new Chaos instance reaps before its first inject resolves the target, so
    // that inject (of a kind that needs a running target) finds it running.
    const next = createChaos({ seed: 2 });
    const noop = await next.inject({ kind: 'network-loss', target, percent: 0 });
    await noop.revert();
    const after = await state(target);
    expect(after.Running).toBe(true);
    expect(after.Pid).not.toBe(before.Pid);
    expect(await serverAnswers(await currentIp(target))).toBe(true);
    expect((await state(control)).Pid).toBe(controlPid);
  });
});
