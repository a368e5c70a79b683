// Run by test/integration/revert-on-end.test.ts: each test injects into the
// container VC_TARGET and then ends badly without reverting.
import { it } from 'vitest';
import { chaos } from 'vitest-chaos';

const target = process.env.VC_TARGET as string;

it('fails', async () => {
  await chaos.inject({ kind: 'network-loss', target, percent: 100 });
  throw new Error('deliberate failure');
});

it('times out', { timeout: 300 }, async () => {
  await chaos.inject({ kind: 'network-latency', target, latencyMs: 1000 });
  await new Promise((r) => setTimeout(r, 5_000));
});

// Checked while this process (which would drop its links on exit) still lives.
it('leaves nothing attached to the target afterwards', async () => {
  const { attachedPrograms } = await import('../helpers/kernel-state.js');
  const { TargetResolver } = await import('../../src/targets/resolve-target.js');
  const dir = (await new TargetResolver().resolve(target)).cgroup.directory;
  if (chaos.activeFaults().length !== 0) throw new Error(`active: ${chaos.activeFaults().join(', ')}`);
  const attached = attachedPrograms(dir);
  if (attached.length !== 0) throw new Error(`still attached: ${attached.join(', ')}`);
});
