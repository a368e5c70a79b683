// Run by test/integration/preflight-skip.test.ts as an unprivileged user: the
// inject below must skip this test with the preflight's reason, never pass it.
import { it } from 'vitest';
import { chaos } from 'vitest-chaos';

it('injects a fault', async () => {
  await chaos.inject({ kind: 'network-loss', target: 'anything', percent: 10 });
  throw new Error('inject() returned without privileges');
});
