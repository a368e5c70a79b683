import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { faultContract } from '../helpers/fault-contract.js';
import { chaos } from 'vitest-chaos';
import { IMAGES, startHttpServer, testLabels } from '../helpers/containers.js';
import {
  answersOk,
  currentIp,
  docker,
  execDetached,
  httpGet,
  removeQuietly,
  serverAnswers,
  startRaw,
  state,
} from '../helpers/processes.js';
import { udpEchoRound } from '../helpers/udp.js';

describe('container-stop', () => {
  const env = faultContract({
    kind: 'container-stop',
    start: (name) => startHttpServer(name),
    params: () => ({}),
    measure: async (c) => (await state(c)).Running,
    affected: (running) => expect(running).toBe(false),
    normal: (running) => expect(running).toBe(true),
    counts: (s) => expect([s.stopped, s.foundStopped]).toEqual([1, 0]),
    // Started again on revert: a new pid (and maybe a new address) is the documented outcome.
    applied: async (c) => {
      const s = await state(c);
      return { running: s.Running, paused: s.Paused };
    },
    // A stopped container stays stopped when the process dies: the journal entry lets the next run start it.
    sigkill: 'reaped by the next run',
    bad: [
      ['timeoutSec -1', { timeoutSec: -1 }, /timeoutSec is -1; expected an integer number of seconds from 0 to 3600/],
      ['timeoutSec 1.5', { timeoutSec: 1.5 }, /timeoutSec is 1.5; expected an integer number of seconds from 0 to 3600/],
      ['timeoutSec as a string', { timeoutSec: '10' }, /timeoutSec is "10"; expected an integer number of seconds from 0 to 3600/],
    ],
  });
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  beforeEach(() => {
    ({ target, control } = env);
  });
  afterAll(() =>
    docker
      .getContainer(env.target.getId())
      .start()
      .catch(() => undefined),
  );

  it('stops the target until revert, which starts it again (new pid); the control runs throughout', async () => {
    // The contract's last case started the target again: wait until its server (and its
    // SIGTERM handler) is up, or pid 1 ignores SIGTERM and docker stop ends in SIGKILL.
    expect(await serverAnswers(await currentIp(target))).toBe(true);
    const before = await state(target);
    const controlBefore = await state(control);
    const fault = await chaos.inject({ kind: 'container-stop', target });
    const during = await state(target);
    // The server handles SIGTERM (docker stop's first signal) and exits 0.
    expect([during.Running, during.ExitCode]).toEqual([false, 0]);
    expect(fault.stats()).toMatchObject({ stopped: 1, exitCode: 0, foundStopped: 0 });
    // Nothing runs in it: an exec is refused.
    await expect(execDetached(target, ['true'])).rejects.toMatchObject({ statusCode: 409 });
    const c = await state(control);
    expect([c.Running, c.Pid, c.StartedAt]).toEqual([true, controlBefore.Pid, controlBefore.StartedAt]);
    expect((await httpGet(`http://${await currentIp(control)}:8080/`)).status).toBe(200);

    await fault.revert();
    const after = await state(target);
    expect(after.Running).toBe(true);
    expect(after.Pid).not.toBe(before.Pid);
    expect(Date.parse(after.StartedAt)).toBeGreaterThan(Date.parse(before.StartedAt));
    // Its address may have changed: ask Docker, never reuse the old one.
    expect(await serverAnswers(await currentIp(target))).toBe(true);
    expect(fault.stats().stopped).toBe(0);
    console.info(`stop: docker stop took ${fault.stats().stopMs} ms, stopped for ${fault.stats().stoppedMs} ms`);
    await fault.revert(); // twice: quiet
  });

  it('later injects on the started-again container work (new pid, new cgroup)', async () => {
    const lossRound = async () => {
      const ip = await currentIp(target);
      expect(await serverAnswers(ip)).toBe(true);
      expect((await udpEchoRound(ip, 9000, 100)).lost).toBe(0);
      const loss = await chaos.inject({ kind: 'network-loss', target, percent: 100 });
      const lossy = await udpEchoRound(ip, 9000, 100, 300);
      await loss.revert();
      expect((await udpEchoRound(ip, 9000, 100)).lost).toBe(0);
      return [lossy.lost, loss.stats().ingressDropped];
    };
    expect(await lossRound()).toEqual([100, 100]); // the resolver now holds the container's pid and cgroup
    const f = await chaos.inject({ kind: 'container-stop', target });
    await f.revert();
    expect(await lossRound()).toEqual([100, 100]);
  });

  it('timeoutSec: a stop signal that is ignored gives way to SIGKILL after that many seconds', async () => {
    // sleep as pid 1 has no SIGTERM handler, so the kernel drops the TERM: only the KILL ends it.
    const stubborn = await startRaw('stop-stubborn', { cmd: ['sleep', 'infinity'], stopSignal: 'SIGTERM' });
    try {
      const f = await chaos.inject({ kind: 'container-stop', target: stubborn, timeoutSec: 1 });
      expect(f.stats().exitCode).toBe(137);
      expect(f.stats().stopMs).toBeGreaterThanOrEqual(1000);
      expect(f.stats().stopMs).toBeLessThan(5000);
      await f.revert();
      expect((await state(stubborn)).Running).toBe(true);
    } finally {
      await removeQuietly(stubborn);
    }
  });

  it('applied twice, the container stays stopped until the last one is reverted', async () => {
    const a = await chaos.inject({ kind: 'container-stop', target, timeoutSec: 5 });
    const b = await chaos.inject({ kind: 'container-stop', target, timeoutSec: 5 });
    expect(b.stats()).toMatchObject({ stopped: 1, foundStopped: 0 });
    await a.revert();
    expect((await state(target)).Running).toBe(false);
    await b.revert();
    await b.revert();
    expect((await state(target)).Running).toBe(true);
    expect(await serverAnswers(await currentIp(target))).toBe(true);
  });

  it('leaves a container stopped by someone else as it found it', async () => {
    await docker.getContainer(target.getId()).stop();
    try {
      const f = await chaos.inject({ kind: 'container-stop', target });
      expect(f.stats().foundStopped).toBe(1);
      await f.revert();
      expect((await state(target)).Running).toBe(false);
    } finally {
      await docker.getContainer(target.getId()).start();
    }
  });
  it('keeps the host port: the mapped port read before the fault answers after the revert', async () => {
    const published = await new GenericContainer(IMAGES.httpServer)
      .withLabels(testLabels('container-stop-port'))
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
      const fault = await chaos.inject({ kind: 'container-stop', target: published, timeoutSec: 1 });
      await expect(fetch(url, { signal: AbortSignal.timeout(1000) })).rejects.toThrow(); // stopped: nobody listens there
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
