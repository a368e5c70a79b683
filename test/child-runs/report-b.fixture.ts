// Report fixture (test/integration/report.test.ts): a slow backend the
// hypothesis does not survive (rejected; every window judged, no abort).
import { expect, it } from 'vitest';
import { backendExperiment } from './report-experiment.js';

it('keeps errors under 20% when the backend is 1.5 s slower (it does not: the api gives it 1 s)', async () => {
  const r = await backendExperiment({
    name: 'backend +1500 ms',
    when: 'the backend is 1.5 s slower',
    severity: 'medium',
    fault: { kind: 'network-latency', latencyMs: 1500 },
    durationMs: 3000,
    more: { abortOnBreach: false },
  });
  expect(r.verdict).toBe('rejected');
});
