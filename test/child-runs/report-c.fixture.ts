// Report fixture (test/integration/report.test.ts): the backend link cut, the
// hypothesis breaks at once (aborted on the breach, faults rolled back).
import { expect, it } from 'vitest';
import { backendExperiment } from './report-experiment.js';

it('aborts when the backend link is cut', async () => {
  const r = await backendExperiment({
    name: 'backend cut',
    when: 'the backend is unreachable',
    severity: 'critical',
    fault: { kind: 'network-partition', action: 'reject' },
    durationMs: 3000,
    more: { recovery: { withinMs: 5000 } },
  });
  expect(r.verdict).toBe('aborted');
});
