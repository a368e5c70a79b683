import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { beforeEach, describe, expect, it } from 'vitest';
import { faultContract } from '../helpers/fault-contract.js';
import { chaos } from 'vitest-chaos';
import { IMAGES, startHttpServer, testLabels } from '../helpers/containers.js';
import { answersOk, currentIp, docker, httpGet, serverAnswers, state } from '../helpers/processes.js';
import { udpEchoRound } from '../helpers/udp.js';

const uptimeMs = async (ip: string) => JSON.parse((await httpGet(`http://${ip}:8080/stats`)).body).uptimeMs as number;

describe('container-restart', () => {
  const env = faultContract({
    kind: 'container-restart',
    start: (name) => startHttpServer(name),
    params: () => ({}),
    measure: async (c) => {
      const s = await state(c);
      return { running: s.Running, pid: s.Pid, startedAt: s.StartedAt };
    },
    affected: (m, base) => {
      expect(m.running).toBe(true);
      expect(m.pid).not.toBe(base.pid);
      expect(Date.parse(m.startedAt)).toBeGreaterThan(Date.parse(base.startedAt));
    },
    normal: (m, base) => expect(m).toEqual({ ...base, running: true }),
    counts: (s) => expect(s.newPid).not.toBe(s.oldPid),
    applied: async (c) => (await state(c)).Pid,
    // A restart cannot be undone; nothing is journaled, so a killed injector leaves nothing to reap.
    revertible: false,
    sigkill: 'nothing left',
    bad: [
      ['timeoutSec 7200', { timeoutSec: 7200 }, /timeoutSec is 7200; expected an integer number of seconds from 0 to 3600/],
      ['a signal', { signal: 'KILL' }, /signal is "KILL"; expected no such field/],
    ],
  });
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  beforeEach(() => {
    ({ target, control } = env);
  });

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
  it('keeps the host port: the mapped port read before the fault answers after the restart', async () => {
    const published = await new GenericContainer(IMAGES.httpServer)
      .withLabels(testLabels('container-restart-port'))
      .withExposedPorts(8080)
      .withWaitStrategy(Wait.forLogMessage(/listening http=/))
      .start();
    try {
      const port = published.getMappedPort(8080);
      // Docker 20.10 may publish 0.0.0.0 and :: on different ephemeral ports: both are kept.
      const bindingsBefore = (await docker.getContainer(published.getId()).inspect()).NetworkSettings.Ports['8080/tcp'];
      expect(bindingsBefore?.map((b) => b.HostPort)).toContain(String(port));
      const url = `http://${published.getHost()}:${port}/health`;
      expect((await fetch(url)).status).toBe(200);
      const fault = await chaos.inject({ kind: 'container-restart', target: published, timeoutSec: 1 });

      await fault.revert();
      // Docker alone hands out a new ephemeral port at every start; the fault pinned the old one.
      // (The engine runs the container before its server listens: wait for the answer.)
      expect(await answersOk(url, 10_000, 50)).toBe(true);
      const ports = (await docker.getContainer(published.getId()).inspect()).NetworkSettings.Ports['8080/tcp'];
      const sorted = (l: typeof ports) => [...(l ?? [])].map((b) => `${b.HostIp} ${b.HostPort}`).sort();
      expect(sorted(ports)).toEqual(sorted(bindingsBefore));
      expect(fault.stats()).toMatchObject({ hostPortsChanged: 0 });
      expect(fault.stats().hostPortsKept).toBeGreaterThanOrEqual(1);
      // And it stays pinned: a later plain docker stop/start keeps it too.
      await docker.getContainer(published.getId()).restart({ t: 1 });
      expect(await answersOk(url, 10_000, 50)).toBe(true);
    } finally {
      await published.stop({ timeout: 0 }).catch(() => undefined);
    }
  });
});
