// The `chaos` instance tests import. The plugin's setup file configures it
// with the options the plugin provided to this worker; without the plugin it
// runs its own preflight on first inject.
import { Chaos, type ChaosOptions } from './chaos.js';

let current = new Chaos();

/** Replaces the worker's instance (the setup file calls this with the plugin's options). */
export function configureChaos(options: ChaosOptions): Chaos {
  current = new Chaos(options, current.resolver);
  return current;
}

/** Delegates to the worker's current instance, so `import { chaos }` stays valid after configure. */
export const chaos: Pick<
  Chaos,
  'inject' | 'plan' | 'validate' | 'allow' | 'activeFaults' | 'revertAll' | 'experiment' | 'load' | 'observe'
> & {
  readonly seed: number;
  readonly dryRun: boolean;
} = {
  inject: (spec) => current.inject(spec),
  plan: (spec, seed) => current.plan(spec, seed),
  experiment: (opts) => current.experiment(opts),
  load: (opts) => current.load(opts),
  observe: (container) => current.observe(container),
  validate: (spec) => current.validate(spec),
  allow: (ref) => current.allow(ref),
  activeFaults: () => current.activeFaults(),
  revertAll: () => current.revertAll(),
  get seed() {
    return current.seed;
  },
  get dryRun() {
    return current.dryRun;
  },
};
