// An experiment that aborts on a breach while another inject is still under
// way (a docker stop that takes 3 s): what lands after the abort is reverted
// before the recovery phase, never left in force through recovery or after.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createChaos } from 'vitest-chaos';
import { startDemoSystem, type DemoSystem } from '../../examples/demo-system.js';
import { removeQuietly, startRaw, state } from '../helpers/processes.js';

let demo: DemoSystem;
let bystander: string;
beforeAll(async () => {
  // A pid 1 that ignores SIGTERM: docker stop waits its whole timeout before SIGKILL.
  [demo, bystander] = await Promise.all([
    startDemoSystem(),
    startRaw('abort-bystander', { cmd: ['sleep', 'infinity'], stopSignal: 'SIGTERM' }),
  ]);
  for (let i = 0; i < 3; i++) await (await fetch(demo.url)).text();
});
afterAll(async () => {
  await removeQuietly(bystander);
  await demo?.stop();
});

it('reverts an inject that lands after the abort before recovery starts', async () => {
  const t0 = performance.now();
  let recoveryAt = Infinity;
  const chaos = createChaos({
    seed: 3,
    progress: (line) => {
      if (line.includes('recovery:')) recoveryAt = performance.now() - t0;
    },
  });
  // What the bystander is, every 50 ms, from the start until 3 s after the experiment returned.
  const samples: { atMs: number; running: boolean }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const s = await state(bystander);
      samples.push({ atMs: performance.now() - t0, running: s.Running });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const r = await chaos.experiment({
    name: 'abort with a stop in flight',
    hypothesis: 'errors stay under 5% while the backend is unreachable',
    steadyState: { load: { url: demo.url, rps: 40 }, slos: { errorRate: { max: 0.05 } }, windowMs: 500 },
    baselineMs: 1000,
    faults: [
      { kind: 'network-partition', target: demo.api, peer: demo.backend, action: 'reject' },
      { atMs: 1, fault: { kind: 'container-stop', target: bystander, timeoutSec: 3 } },
    ],
    durationMs: 8000,
    recovery: { withinMs: 3000 },
  });
  const returnedAt = performance.now() - t0;
  await new Promise((res) => setTimeout(res, 3000));
  sampling = false;
  await sampler;

  const [partition, stop] = r.faults;
  console.info(
    `breach at ${r.breaches[0]?.window.endMs} ms, stop landed at ${stop?.injectedAtMs} ms, reverted at ${stop?.revertedAtMs} ms, ` +
      `recovery phase from ${r.phases.recovery?.startMs} ms; experiment returned after ${returnedAt.toFixed(0)} ms; stop stats ${JSON.stringify(stop?.stats)}`,
  );
  expect(r.verdict).toBe('aborted');
  expect(r.breaches[0]).toMatchObject({ slo: 'errorRate', phase: 'observe' });
  expect(partition!.revertedAtMs! - r.breaches[0]!.window.endMs).toBeLessThan(500);
  // the stop was in flight at the abort: it landed after the partition was reverted...
  expect(stop!.injectedAtMs).not.toBeNull();
  expect(stop!.injectedAtMs!).toBeGreaterThan(partition!.revertedAtMs!);
  // ...and was reverted before the recovery phase began
  expect(stop!.revertedAtMs).not.toBeNull();
  expect(stop!.revertedAtMs!).toBeLessThanOrEqual(r.phases.recovery!.startMs);
  expect(stop!.stats.stopped).toBe(0);
  // Measured from Docker: running again through the whole recovery phase and after the experiment.
  const stoppedLate = samples.filter((s) => s.atMs > recoveryAt + 100 && !s.running);
  expect(samples.some((s) => !s.running)).toBe(true); // the stop did land
  expect(stoppedLate).toEqual([]);
  expect((await state(bystander)).Running).toBe(true);
  expect(chaos.activeFaults()).toEqual([]);
});
