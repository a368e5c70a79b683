// Report fixture (test/integration/report.test.ts): the backend link cut, the
// hypothesis breaks at once (aborted on the breach, faults rolled back).
import { expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';

it('aborts when the backend link is cut', async () => {
  const r = await chaos.experiment({
    name: 'backend cut',
    hypothesis: 'Given 20 req/s, when the backend is unreachable, errors stay under 20%',
    severity: 'critical',
    steadyState: {
      load: { url: process.env.VC_URL as string, rps: 20, timeoutMs: 8000 },
      slos: { errorRate: { max: 0.2 } },
      windowMs: 500,
    },
    baselineMs: 1000,
    faults: [
      { kind: 'network-partition', target: process.env.VC_TARGET as string, peer: `container:${process.env.VC_PEER}`, action: 'reject' },
    ],
    durationMs: 3000,
    recovery: { withinMs: 5000 },
  });
  expect(r.verdict).toBe('aborted');
});
