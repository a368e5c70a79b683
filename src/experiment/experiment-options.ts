// What an experiment is given: its options (the public shape of
// chaos.experiment()), and the injector and environment it runs with.
import type { ActiveFault } from '../faults/fault-handle.js';
import type { KernelObserver } from '../observe/kernel-observer.js';
import type { ContainerRef } from '../targets/resolve-target.js';
import type { Severity } from './result.js';
import type { LoadOptions } from '../steady-state/load-generator.js';
import type { ProbeSpec } from '../steady-state/probes.js';
import type { Slos } from '../steady-state/slo.js';

export interface ExperimentStep<S> {
  /** Offset from the start of the observe phase (parallel), or from the previous step's revert (serial). Default 0. */
  atMs?: number;
  /** Reverted after this long; default: until the observe phase ends. */
  durationMs?: number;
  fault: S;
}

export interface ExperimentOptions<S> {
  name: string;
  /** The sentence under test: "Given normal traffic, when the backend is 200 ms slower, p99 stays under 500 ms". */
  hypothesis: string;
  steadyState: {
    load?: LoadOptions;
    probes?: ProbeSpec[];
    slos: Slos;
    /** Sliding window the SLOs are judged over. Default min(1000 ms, baselineMs, durationMs). */
    windowMs?: number;
  };
  /** Steady traffic before any fault; relative SLOs compare with it. Default 2000 ms. */
  baselineMs?: number;
  faults: (S | ExperimentStep<S>)[];
  /** 'parallel' (default): steps at their offsets; 'serial': one after the other. */
  schedule?: 'parallel' | 'serial';
  /** Length of the observe phase, from the first inject. */
  durationMs: number;
  /**
   * withinMs: the SLOs must hold again within this long after the last revert.
   * maxWaitMs: how long to keep measuring recovery (default max(10 s, 2 x withinMs)).
   */
  recovery?: { withinMs: number; maxWaitMs?: number };
  /** Revert every fault at the first breach. Default true. */
  abortOnBreach?: boolean;
  /**
   * Gradual rollout: each fault goes to `steps[0]` of its chosen targets, then
   * `steps[1]`, ... ('all': every one), each step held `holdMs` with the SLOs
   * judged; the first breach stops it. Default: all targets at once.
   */
  rollout?: { steps: (number | 'all')[]; holdMs: number };
  /** Seed of every random choice (fault draws, arrivals). Default: derived from the run's seed. */
  seed?: number;
  /**
   * Containers whose kernel observations the result carries besides the faults' targets
   * (`result.kernel[phase][name]`), e.g. the client of a server under a fault. Default: none.
   */
  observe?: ContainerRef[];
  /** How much it matters that this hypothesis holds; weights the run's resilience score. Default 'medium'. */
  severity?: Severity;
}

export interface Injector<S> {
  validate(spec: S): unknown;
  inject(spec: S): Promise<ActiveFault<object>>;
  /** Inject on only the first `count` chosen targets (a rollout widens it later). */
  injectOn?(spec: S, count: number): Promise<ActiveFault<object>>;
  /** Kernel observers on every target these faults choose (with these seeds) and on `also`; none in a dry run. */
  observeTargets?(faults: readonly { spec: S; seed: number }[], also?: readonly ContainerRef[]): Promise<KernelObserver[]>;
}

export interface ExperimentEnv<S> {
  injector: Injector<S>;
  seed: number;
  /** Aborted when the test times out or the run is cancelled. */
  signal?: AbortSignal;
  /** Called with the progress line of each phase. */
  progress?: (line: string) => void;
}
