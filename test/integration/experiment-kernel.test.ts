// result.kernel[phase][target]: what the kernel saw of an experiment's targets,
// phase by phase; and an observer that follows its container through a restart.
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { ipOf, sh, startHttpServer, stopAll } from '../helpers/containers.js';
import { formatTable } from '../../src/report/chaos-reporter.js';
import { kernel } from '../../src/kernel/kernel.js';

describe('kernel observations in experiments', () => {
  let server: StartedTestContainer;
  let other: StartedTestContainer;
  beforeAll(async () => {
    [server, other] = await Promise.all([startHttpServer('kernel-exp-server'), startHttpServer('kernel-exp-other')]);
  });
  afterAll(() => stopAll(server, other));

  it('carries result.kernel for every phase and target, and the change the fault made', async () => {
    const name = server.getName().replace(/^\//, '');
    const r = await chaos.experiment({
      name: 'server throttled',
      hypothesis: 'Given 30 req/s, when the server gets 1 % of a CPU, it still answers',
      steadyState: {
        load: { url: `http://${ipOf(server)}:8080/`, rps: 30, timeoutMs: 3000 },
        slos: { errorRate: { max: 0.5 } },
        windowMs: 1000,
      },
      baselineMs: 2000,
      faults: [{ kind: 'cpu-throttle', target: server, cpus: 0.01 }],
      durationMs: 3000,
      recovery: { withinMs: 5000 },
      observe: [other], // observed too, though no fault targets it
    });
    const k = r.kernel!;
    const table = formatTable([{ test: 't', file: 'f', result: r }]);
    console.info(`result.kernel: ${JSON.stringify(k)}\n${table}`);
    expect(Object.keys(k)).toEqual(['baseline', 'observe', 'recovery']);
    const otherName = other.getName().replace(/^\//, '');
    for (const phase of ['baseline', 'observe', 'recovery'] as const) {
      expect(Object.keys(k[phase]!).sort()).toEqual([name, otherName].sort());
      expect(k[phase]![name]!.runqueueSamples).toBeGreaterThan(0); // the server answered the load in every phase
    }
    expect(k.observe![name]!.runqueueDelayP99Us!).toBeGreaterThan(60_000); // 1 ms of CPU per 100 ms period: waits up to 99 ms
    expect(k.observe![name]!.runqueueDelayP99Us!).toBeGreaterThan(k.baseline![name]!.runqueueDelayP99Us!); // the baseline: other engineers' load only
    expect(k.observe![otherName]!.runqueueDelayP99Us ?? 0).toBeLessThan(k.observe![name]!.runqueueDelayP99Us!); // not throttled
    expect(table).toMatch(new RegExp(`server throttled: .*${name} runqueueDelayP99Us`));
    expect(kernel().observe.registered).toBe(0); // the experiment stopped its observers
  }, 60_000);

  it('follows a restarted container into its new cgroup', async () => {
    const obs = await chaos.observe(server);
    await chaos.inject({ kind: 'container-restart', target: server });
    await obs.follow();
    const m = obs.mark();
    await sh(server, 'sleep 30 & p=$!; sleep 0.1; kill -9 $p; wait; true');
    const after = obs.snapshot(m);
    const all = obs.stop();
    console.info(`across a restart: ${JSON.stringify(all.processExits)}`);
    expect(all.processExits.find((e) => e.comm === 'node')).toBeDefined(); // the server stopped by the restart
    expect(after.processExits.filter((e) => e.signal === 'SIGKILL').map((e) => e.comm)).toEqual(['sleep']);
  }, 60_000);
});
