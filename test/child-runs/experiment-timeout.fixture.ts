// Run by test/integration/experiment-cancel.test.ts: an experiment longer than
// its test's timeout. The test fails by timeout; the experiment must still
// revert its fault, stop its load, and leave what it measured in the task meta.
import { it } from 'vitest';
import { chaos } from 'vitest-chaos';

it('runs past its timeout', { timeout: 2500 }, async () => {
  await chaos.experiment({
    name: 'too long',
    hypothesis: 'never finishes in time',
    steadyState: { load: { url: process.env.VC_URL as string, rps: 20 }, slos: { errorRate: { max: 0.5 } } },
    baselineMs: 1000,
    faults: [{ kind: 'network-latency', target: process.env.VC_TARGET as string, latencyMs: 20 }],
    durationMs: 20_000,
  });
});

it('afterwards nothing of it is left', async () => {
  const { attachedPrograms } = await import('../helpers/kernel-state.js');
  const { TargetResolver } = await import('../../src/targets/resolve-target.js');
  const dir = (await new TargetResolver().resolve(process.env.VC_TARGET as string)).cgroup.directory;
  // the timed-out experiment reverts asynchronously, give it a moment
  await new Promise((r) => setTimeout(r, 500));
  if (chaos.activeFaults().length) throw new Error(`active: ${chaos.activeFaults().join(', ')}`);
  const attached = attachedPrograms(dir);
  if (attached.length) throw new Error(`still attached: ${attached.join(', ')}`);
});
