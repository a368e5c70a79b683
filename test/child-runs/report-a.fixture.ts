// Report fixture (test/integration/report.test.ts): a mild fault the demo
// system keeps (validated); the api gets 5 s (not 1 s) for its backend call.
import { expect, it } from 'vitest';
import { backendExperiment } from './report-experiment.js';

it('keeps errors under 20% when the backend is 30 ms slower', async () => {
  const r = await backendExperiment({
    name: 'backend +30 ms',
    when: 'the backend is 30 ms slower',
    severity: 'high',
    fault: { kind: 'network-latency', latencyMs: 30 },
    durationMs: 2000,
    patient: true,
  });
  expect(r.verdict).toBe('validated');
});
