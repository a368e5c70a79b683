// Chaos on ourselves, for real (issue 14): the Docker engine restarted while faults are in
// force. Restarting dockerd stops every container on the machine, so this runs only in
// `npm run soak`, after the workers (soak/vitest.config.ts with SOAK_LAST=1), never in the test
// command. The services run with a restart policy, as services do: "always" for two of them,
// "unless-stopped" for the one a fault stops (with "always" the engine itself starts a
// stopped container again when it restarts, which would hide the case).
//
// While the engine is down the injecting run is SIGKILLed (it cannot revert: Docker does not
// answer). When the engine is back it has restarted the services it stopped itself, each in a
// fresh cgroup; the container our fault stopped stays stopped ("unless-stopped" remembers a
// stop as manual). The next run's reaper must start it, and nothing of ours may be left anywhere.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, describe, expect, it } from 'vitest';
import { Journal } from '../src/journal/journal.js';
import { startHttpServer, stopAll } from '../test/helpers/containers.js';
import { killInjectors, sigkill, startInjector } from '../test/helpers/injector.js';
import { attachedPrograms } from '../test/helpers/kernel-state.js';
import { docker, httpGet, state } from '../test/helpers/processes.js';
import { cgroupValue } from '../test/helpers/resources.js';
import { cgroupDirOf } from '../test/helpers/target-info.js';

const JOURNAL = mkdtempSync(join(tmpdir(), 'vc-dockerd-restart-'));
process.env.VITEST_CHAOS_JOURNAL_DIR = JOURNAL;
const DOCKERD_LOG = '/var/log/vitest-chaos-dockerd.log';

const records = () => readdirSync(JOURNAL).filter((f) => f.endsWith('.json'));

function engineAnswers(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** Stops the engine (systemd's unit if it has one, else the dockerd process) and starts it again. */
async function restartDockerd(whileDown: () => Promise<void>): Promise<{ downMs: number }> {
  const systemd = (() => {
    try {
      return execFileSync('systemctl', ['is-active', 'docker'], { encoding: 'utf8' }).trim() === 'active';
    } catch {
      return false;
    }
  })();
  const t0 = performance.now();
  if (systemd) {
    execFileSync('systemctl', ['stop', 'docker']);
  } else {
    const pid = Number(execFileSync('pgrep', ['-xo', 'dockerd'], { encoding: 'utf8' }).trim());
    process.kill(pid, 'SIGTERM');
    await until('dockerd exits', () => !existsSync(`/proc/${pid}`), 60_000);
  }
  await whileDown();
  if (systemd) {
    execFileSync('systemctl', ['start', 'docker']);
  } else {
    // As scripts/setup.sh starts it: its own session, its log.
    spawn('sh', ['-c', `setsid nohup dockerd >>${DOCKERD_LOG} 2>&1 </dev/null &`], { stdio: 'ignore', detached: true }).unref();
  }
  await until('the engine answers again', engineAnswers, 60_000);
  return { downMs: performance.now() - t0 };
}

describe('dockerd restarted while faults are in force', () => {
  let services: StartedTestContainer[] = [];
  afterAll(async () => {
    killInjectors();
    await stopAll(...services);
    rmSync(JOURNAL, { recursive: true, force: true });
  });

  it('the injecting run dies while the engine is down; the next reaper starts the stopped service; nothing is left', async () => {
    services = await Promise.all([
      startHttpServer('dockerd-restart-stopped'),
      startHttpServer('dockerd-restart-throttled'),
      startHttpServer('dockerd-restart-control'),
    ]);
    const [stopped, throttled, control] = services as [StartedTestContainer, StartedTestContainer, StartedTestContainer];
    // 'always' brings back even a container stopped by hand when the daemon restarts (measured:
    // the fault's stop was undone by the engine itself); 'unless-stopped' keeps that stop.
    await docker.getContainer(stopped.getId()).update({ RestartPolicy: { Name: 'unless-stopped' } });
    for (const c of [throttled, control]) await docker.getContainer(c.getId()).update({ RestartPolicy: { Name: 'always' } });
    const throttledCgroup = await cgroupDirOf(throttled);

    const stopper = await startInjector('container-stop', stopped, { timeoutSec: 0 });
    const other = await startInjector('sequence', throttled, [
      { kind: 'cpu-throttle', cpus: 0.3 },
      { kind: 'network-loss', percent: 100 },
    ]);
    expect((await state(stopped)).Running).toBe(false);
    expect(await cgroupValue(throttled, 'cpu/cpu.cfs_quota_us')).toBe('30000');
    expect(await attachedPrograms(throttledCgroup)).not.toEqual([]);
    expect(records().length).toBeGreaterThanOrEqual(2);

    const { downMs } = await restartDockerd(async () => {
      expect(engineAnswers()).toBe(false);
      await sigkill(stopper);
      await sigkill(other);
    });

    // The engine restarted what it had stopped, in fresh cgroups: no quota, no program of ours.
    await until('the services the engine stopped run again', async () => (await state(throttled)).Running && (await state(control)).Running, 60_000);
    expect(await cgroupValue(throttled, 'cpu/cpu.cfs_quota_us')).toBe('-1');
    expect(await attachedPrograms(await cgroupDirOf(throttled))).toEqual([]);
    // The one our fault stopped stays stopped: only the journal knows it must run.
    expect((await state(stopped)).Running).toBe(false);

    const reaped = await new Journal(JOURNAL).reap();
    console.info(
      `dockerd down ${downMs.toFixed(0)} ms; reaper: reverted ${reaped.reverted.map((e) => e.description ?? e.pid).join(', ')}; ` +
        `failed ${reaped.failed.length}; refused ${reaped.refused.length}`,
    );
    expect(reaped.failed).toEqual([]);
    expect(reaped.refused).toEqual([]);
    await until('the stopped service runs again', async () => (await state(stopped)).Running, 20_000);
    const ip = (await docker.getContainer(stopped.getId()).inspect()).NetworkSettings.IPAddress;
    await until('the stopped service answers', async () => (await httpGet(`http://${ip}:8080/health`)).status === 200, 20_000);
    expect(records()).toEqual([]);
    expect(await cgroupValue(throttled, 'cpu/cpu.cfs_quota_us')).toBe('-1');
  });
});
