import { spawn, type ChildProcess } from 'node:child_process';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { faultContract } from '../helpers/fault-contract.js';
import { chaos } from 'vitest-chaos';
import { ipOf, startClient, startHttpServer } from '../helpers/containers.js';
import { execDetached, execExitCode, httpGet, processesIn, removeQuietly, startRaw, state } from '../helpers/processes.js';

const sleepers = async (c: StartedTestContainer, n: number) => {
  const execs = [];
  for (let i = 0; i < n; i++) execs.push(await execDetached(c, ['sleep', '1000']));
  return execs;
};
const sleepPids = async (c: StartedTestContainer) => (await processesIn(c)).filter((p) => p.comm === 'sleep').map((p) => p.pid);

describe('process-kill', () => {
  faultContract({
    kind: 'process-kill',
    start: (name) => startHttpServer(name),
    params: () => ({}),
    measure: async (c) => {
      const s = await state(c);
      return { running: s.Running, exitCode: s.ExitCode };
    },
    // SIGKILL to the main process: the container exits 137.
    affected: (m) => expect(m).toEqual({ running: false, exitCode: 137 }),
    normal: (m) => expect(m).toEqual({ running: true, exitCode: 0 }),
    counts: (s) => expect(s).toMatchObject({ matched: 1, signalled: 1, exited: 1, containerExitCode: 137 }),
    applied: async (c) => (await processesIn(c)).map((p) => p.pid),
    bad: [
      ['an unknown signal', { signal: 'SIGFOO' }, /signal is "SIGFOO"; expected a signal name like "SIGKILL"/],
      ['signal 0', { signal: 0 }, /signal is 0; expected .* a signal number from 1 to 64/],
      ['an unknown processes', { processes: 'some' }, /processes is "some"; expected one of "main", "all", or \{ name/],
      ['an empty name', { processes: { name: '' } }, /processes.name is ""; expected a non-empty process name/],
      ['count with main', { count: 2 }, /count is 2; expected no count with processes "main"/],
      ['count 0', { processes: 'all', count: 0 }, /count is 0; expected an integer from 1 to 100000/],
    ],
    // A kill cannot be undone; nothing is journaled, so a killed injector leaves nothing to reap.
    revertible: false,
    sigkill: 'nothing left',
  });
  const started: (StartedTestContainer | string)[] = [];
  const hostSleeps: ChildProcess[] = [];
  const track = <T extends StartedTestContainer | string>(c: T): T => {
    started.push(c);
    return c;
  };

  afterEach(async () => {
    await removeQuietly(...started.splice(0));
  });
  afterAll(() => {
    for (const p of hostSleeps) p.kill('SIGKILL');
  });

  // A process named like the victims on the host: the name never reaches outside the target's cgroup.
  const hostSleeper = () => {
    const p = spawn('sleep', ['60'], { stdio: 'ignore' });
    hostSleeps.push(p);
    return p;
  };

  it('SIGKILL to the main process: the container exits 137; a control container and the host live on', async () => {
    const [target, control] = await Promise.all([startHttpServer('kill-target'), startHttpServer('kill-control')]).then((cs) =>
      cs.map(track),
    );
    const host = hostSleeper();
    expect((await httpGet(`http://${ipOf(target!)}:8080/`)).status).toBe(200);
    const controlPid = (await state(control!)).Pid;

    const fault = await chaos.inject({ kind: 'process-kill', target: target! });
    expect(fault.stats()).toEqual({ matched: 1, signalled: 1, exited: 1, containerExitCode: 137, revertible: 0 });
    const s = await state(target!);
    expect([s.Running, s.ExitCode, s.OOMKilled]).toEqual([false, 137, false]);

    const c = await state(control!);
    expect([c.Running, c.Pid]).toEqual([true, controlPid]);
    expect((await httpGet(`http://${ipOf(control!)}:8080/`)).status).toBe(200);
    expect(host.exitCode).toBe(null);
    expect(host.signalCode).toBe(null);

    // Not revertible: revert does nothing, twice, and says so.
    await fault.revert();
    await fault.revert();
    expect(fault.stats().revertible).toBe(0);
    expect((await state(target!)).Running).toBe(false);
    // Killing the main process of a container that is down already: nothing to kill, quietly.
    const again = await chaos.inject({ kind: 'process-kill', target: target! });
    expect(again.stats()).toMatchObject({ matched: 0, signalled: 0 });
  });

  it('SIGTERM: 143 under docker --init (which passes it on); a server that handles it exits 0; a bare pid 1 ignores it', async () => {
    const withInit = track(await startRaw('kill-init', { cmd: ['sleep', 'infinity'], init: true }));
    const [server, bare] = (await Promise.all([startHttpServer('kill-term-server'), startClient('kill-term-bare')])).map(track);

    const a = await chaos.inject({ kind: 'process-kill', target: withInit, signal: 'SIGTERM' });
    expect(a.stats()).toMatchObject({ signalled: 1, exited: 1, containerExitCode: 143 });
    expect((await state(withInit)).ExitCode).toBe(143);

    const b = await chaos.inject({ kind: 'process-kill', target: server!, signal: 'SIGTERM' });
    expect(b.stats()).toMatchObject({ signalled: 1, exited: 1, containerExitCode: 0 });

    // The kernel drops signals a namespace's init has no handler for (only SIGKILL is forced from outside).
    const c = await chaos.inject({ kind: 'process-kill', target: bare!, signal: 15 });
    expect(c.stats()).toMatchObject({ signalled: 1, exited: 0, containerExitCode: -1 });
    expect((await state(bare!)).Running).toBe(true);
  });

  it('{ name } kills only the named processes of the target; count picks them with the seed', async () => {
    const [target, control] = (await Promise.all([startHttpServer('kill-name-target'), startHttpServer('kill-name-control')])).map(track);
    const host = hostSleeper();
    const survivorIndex: number[] = [];
    for (let round = 0; round < 2; round++) {
      const execs = await sleepers(target!, 3);
      const controlExecs = round === 0 ? await sleepers(control!, 3) : [];
      const pids = await sleepPids(target!);
      expect(pids).toHaveLength(3);
      const nodePid = (await state(target!)).Pid;

      const f = await chaos.inject({ kind: 'process-kill', target: target!, processes: { name: 'sleep' }, count: 2, seed: 5 });
      expect(f.stats()).toMatchObject({ matched: 3, signalled: 2, exited: 2 });
      const codes = await Promise.all(execs.map((e) => execExitCode(e, 1000)));
      expect(codes.filter((x) => x === 137)).toHaveLength(2);
      expect(codes.filter((x) => x === null)).toHaveLength(1); // still sleeping
      const left = await sleepPids(target!);
      expect(left).toHaveLength(1);
      survivorIndex.push(pids.indexOf(left[0]!));
      // The main process and the service are untouched.
      expect((await state(target!)).Pid).toBe(nodePid);
      expect((await httpGet(`http://${ipOf(target!)}:8080/`)).status).toBe(200);
      if (round === 0) {
        expect(await sleepPids(control!)).toHaveLength(3);
        expect(await Promise.all(controlExecs.map((e) => execExitCode(e, 0)))).toEqual([null, null, null]);
      }
      // Again without count: the last one; then there is nothing left to kill, quietly.
      expect((await chaos.inject({ kind: 'process-kill', target: target!, processes: { name: 'sleep' } })).stats()).toMatchObject({
        matched: 1,
        signalled: 1,
      });
      expect((await chaos.inject({ kind: 'process-kill', target: target!, processes: { name: 'sleep' } })).stats()).toMatchObject({
        matched: 0,
        signalled: 0,
      });
    }
    // Same seed, same positions: the draw replays.
    expect(survivorIndex[1]).toBe(survivorIndex[0]);
    expect(host.exitCode).toBe(null);
  });

  it("'all' kills every process of the target: the container exits 137", async () => {
    const target = track(await startHttpServer('kill-all'));
    await sleepers(target, 2);
    const f = await chaos.inject({ kind: 'process-kill', target, processes: 'all' });
    expect(f.stats()).toMatchObject({ matched: 3, signalled: 3, exited: 3, containerExitCode: 137 });
    expect((await state(target)).ExitCode).toBe(137);
  });
});
