// Report fixture (test/integration/report.test.ts): a slow backend the
// hypothesis does not survive (rejected; every window judged, no abort).
import { expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';

it('keeps errors under 20% when the backend is 1.5 s slower (it does not: the api gives it 1 s)', async () => {
  const r = await chaos.experiment({
    name: 'backend +1500 ms',
    hypothesis: 'Given 20 req/s, when the backend is 1.5 s slower, errors stay under 20%',
    severity: 'medium',
    steadyState: {
      load: { url: process.env.VC_URL as string, rps: 20, timeoutMs: 8000 },
      slos: { errorRate: { max: 0.2 } },
      windowMs: 500,
    },
    baselineMs: 1000,
    faults: [
      { kind: 'network-latency', target: process.env.VC_TARGET as string, peer: `container:${process.env.VC_PEER}`, latencyMs: 1500 },
    ],
    durationMs: 3000,
    abortOnBreach: false,
  });
  expect(r.verdict).toBe('rejected');
});
