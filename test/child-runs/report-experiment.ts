// The experiment the report fixtures share: 20 req/s against the demo api,
// errors under 20% (error rates only: this 2-core machine is shared, so latency
// percentiles are too noisy to decide a verdict here), one fault on the link
// from the api (VC_TARGET) to its backend (VC_PEER).
import { chaos, type ExperimentOptions, type FaultSpec } from 'vitest-chaos';

export function backendExperiment(o: {
  name: string;
  /** What happens to the backend, for the hypothesis: "the backend is 30 ms slower". */
  when: string;
  severity: ExperimentOptions<FaultSpec>['severity'];
  /** The fault's own parameters (kind and the rest), on the api's link to the backend. */
  fault: Record<string, unknown>;
  durationMs: number;
  /** The api that gives its backend call 5 s (VC_URL_PATIENT) instead of 1 s (VC_URL). */
  patient?: boolean;
  more?: Partial<ExperimentOptions<FaultSpec>>;
}) {
  return chaos.experiment({
    name: o.name,
    hypothesis: `Given 20 req/s, when ${o.when}, errors stay under 20%`,
    severity: o.severity,
    steadyState: {
      load: { url: (o.patient ? process.env.VC_URL_PATIENT : process.env.VC_URL) as string, rps: 20, timeoutMs: 8000 },
      slos: { errorRate: { max: 0.2 } },
      windowMs: 500,
    },
    baselineMs: 1000,
    faults: [{ ...o.fault, target: process.env.VC_TARGET as string, peer: `container:${process.env.VC_PEER}` } as FaultSpec],
    durationMs: o.durationMs,
    ...o.more,
  });
}
