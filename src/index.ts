export { chaos, configureChaos } from './api/default-chaos.js';
export { Chaos, createChaos, type ChaosOptions, type FaultSpec } from './api/chaos.js';
export { ActiveFault, type FaultTargetInfo } from './api/active-fault.js';
export { ChaosSpecError, PreflightError, type SpecProblem } from './api/errors.js';
export { preflight, type PreflightResult, type PreflightProblem } from './api/preflight.js';
export type { FaultStats } from './faults/fault-kind.js';
export type { NetworkLatencyParams, NetworkLossParams, NetworkPartitionParams } from './faults/registry.js';
export type { ContainerRef } from './targets/resolve-target.js';
