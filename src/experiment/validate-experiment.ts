// Everything an experiment needs checked before it starts: its options and each fault spec.
import { ChaosSpecError, problemsFromZod } from '../contracts/errors.js';
import type { ExperimentOptions, ExperimentStep, Injector } from './experiment-options.js';
import { experimentSchema } from './options.js';

/** Validates everything, throws ChaosSpecError before anything starts. */
export function validateExperiment<S>(opts: ExperimentOptions<S>, injector: Injector<S>): void {
  const parsed = experimentSchema.safeParse(opts, { reportInput: true });
  if (!parsed.success) throw new ChaosSpecError(`chaos.experiment(${opts?.name ?? '?'})`, problemsFromZod(parsed.error, opts));
  for (const step of opts.faults) injector.validate(isStep(step) ? step.fault : step);
}

export function isStep<S>(s: S | ExperimentStep<S>): s is ExperimentStep<S> {
  return !!s && typeof s === 'object' && 'fault' in (s as object);
}
