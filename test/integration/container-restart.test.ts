import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, ChaosSpecError } from 'vitest-chaos';
import { startHttpServer, stopAll } from '../helpers/containers.js';
import { currentIp, httpGet, removeQuietly, serverAnswers, state } from '../helpers/processes.js';
import { udpEchoRound } from '../helpers/udp.js';

const uptimeMs = async (ip: string) => JSON.parse((await httpGet(`http://${ip}:8080/stats`)).body).uptimeMs as number;

describe('container-restart', () => {
  let target: StartedTestContainer;
  let control: StartedTestContainer;

  beforeAll(async () => {
    [target, control] = await Promise.all([startHttpServer('restart-target'), startHttpServer('restart-control')]);
  });
  afterAll(() => stopAll(target, control));

  it('restarts the target (new pid, fresh process, measured downtime); the control is untouched; revert has nothing to undo', async () => {
    const before = await state(target);
    const controlBefore = await state(control);
    await new Promise((r) => setTimeout(r, 1000)); // let the server's uptime grow past what a fresh one has
    expect(await uptimeMs(await currentIp(target))).toBeGreaterThanOrEqual(1000);

    const fault = await chaos.inject({ kind: 'container-restart', target });
    const s = fault.stats();
    const after = await state(target);
    expect(after.Running).toBe(true);
    expect([s.oldPid, s.newPid]).toEqual([before.Pid, after.Pid]);
    expect(s.newPid).not.toBe(s.oldPid);
    expect(s.downtimeMs).toBeGreaterThan(0);
    expect(s.downtimeMs).toBeLessThanOrEqual(s.restartMs!);
    expect(Date.parse(after.StartedAt)).toBeGreaterThan(Date.parse(before.StartedAt));
    const ip = await currentIp(target);
    expect(await serverAnswers(ip)).toBe(true);
    expect(await uptimeMs(ip)).toBeLessThan(1000); // a new server process, not the old one
    const c = await state(control);
    expect([c.Pid, c.StartedAt]).toEqual([controlBefore.Pid, controlBefore.StartedAt]);
    console.info(`restart: docker restart took ${s.restartMs} ms, downtime ${s.downtimeMs} ms (pid ${s.oldPid} -> ${s.newPid})`);

    await fault.revert();
    await fault.revert();
    expect(fault.stats().revertible).toBe(0);
    expect((await state(target)).Pid).toBe(after.Pid);
  });

  it('applied twice restarts twice; later injects reach the new cgroup', async () => {
    const a = await chaos.inject({ kind: 'container-restart', target, timeoutSec: 5 });
    // Until node has set its SIGTERM handler, pid 1 ignores TERM and the stop waits the full timeoutSec.
    expect(await serverAnswers(await currentIp(target))).toBe(true);
    const b = await chaos.inject({ kind: 'container-restart', target, timeoutSec: 5 });
    expect(b.stats().oldPid).toBe(a.stats().newPid);
    expect(b.stats().newPid).not.toBe(a.stats().newPid);
    const ip = await currentIp(target);
    expect(await serverAnswers(ip)).toBe(true);
    const loss = await chaos.inject({ kind: 'network-loss', target, percent: 100 });
    const lossy = await udpEchoRound(ip, 9000, 100, 300);
    await loss.revert();
    expect(lossy.lost).toBe(100);
    expect((await udpEchoRound(ip, 9000, 100)).lost).toBe(0);
  });

  it('reverts quietly after the container is gone', async () => {
    const doomed = await startHttpServer('restart-gone');
    const f = await chaos.inject({ kind: 'container-restart', target: doomed });
    await removeQuietly(doomed);
    await f.revert();
    expect(f.active).toBe(false);
  });

  it('refuses a bad timeoutSec and restarts nothing', async () => {
    const pid = (await state(target)).Pid;
    const err = await chaos.inject({ kind: 'container-restart', target, timeoutSec: 7200 }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ChaosSpecError);
    expect((err as Error).message).toMatch(/timeoutSec is 7200; expected an integer number of seconds from 0 to 3600/);
    expect((await state(target)).Pid).toBe(pid);
  });
});
