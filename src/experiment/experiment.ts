// The experiment, as the API layer sees it. run-experiment.ts runs the phases
// with the units it drives (fault-schedule, watch-observe, measure-recovery,
// build-result); validate-experiment.ts checks everything before it starts.
export type { ExperimentEnv, ExperimentOptions, ExperimentStep, Injector } from './experiment-options.js';
export { runExperiment } from './run-experiment.js';
export { validateExperiment } from './validate-experiment.js';
