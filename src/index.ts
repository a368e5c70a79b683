export { chaos, configureChaos } from './api/default-chaos.js';
export { Chaos, createChaos, type ChaosOptions, type FaultSpec, type SpecOf } from './api/chaos.js';
export { ActiveFault, type FaultTargetInfo } from './faults/fault-handle.js';
export { ChaosSpecError, PreflightError, type SpecProblem } from './contracts/errors.js';
export { preflight, resourceSupport, type PreflightResult, type PreflightProblem, type ResourceSupport } from './api/preflight.js';
export type { FaultStats } from './faults/fault-kind.js';
// Every fault kind's parameter type (NetworkLossParams, CpuThrottleParams, ...).
export type * from './faults/kinds.js';
export type { ContainerRef } from './targets/resolve-target.js';
export { chaosMatchers } from './api/matchers.js';
export { describeBreach, summarize } from './experiment/describe.js';
export type { RunningLoad } from './api/chaos.js';
export type { ExperimentOptions, ExperimentStep } from './experiment/experiment.js';
export type { Breach, ExperimentResult, FaultRecord, Phase, Severity, TimelinePoint, Verdict } from './experiment/result.js';
export type { PromqlQuery } from './steady-state/promql.js';
export type { LoadOptions, LoadTotals } from './steady-state/load-generator.js';
export type { ProbeSpec } from './steady-state/probes.js';
export type { WindowStats } from './steady-state/recorder.js';
export type { Slos, SloName } from './steady-state/slo.js';
