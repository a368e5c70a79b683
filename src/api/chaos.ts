// The public verbs, composed from units with one job each: spec validation
// (faults/validate-spec), the blast radius (targets/blast-radius), per-test
// seeds (test-seeds), the journal's reaper (journal/reap-once), the preflight
// gate (preflight-gate), steady load (steady-state/running-load) and the
// experiment runner. Every fault is bound to the running Vitest test (reverted
// when it ends, however it ends) and listed so revertAll() can undo the rest.
import { randomSeed } from '../contracts/seed.js';
import { runExperiment, validateExperiment, type ExperimentOptions } from '../experiment/experiment.js';
import type { ExperimentResult } from '../experiment/result.js';
import type { FaultContext } from '../faults/fault-kind.js';
import { ActiveFault } from '../faults/fault-handle.js';
import { faultKinds, type FaultKindName, type FaultSpec, type StatsOf } from '../faults/kinds.js';
import { validateSpec, type ValidSpec } from '../faults/validate-spec.js';
import { Journal } from '../journal/journal.js';
import { reapOnce } from '../journal/reap-once.js';
import { kernel, type Kernel } from '../kernel/kernel.js';
import type { LoadOptions } from '../steady-state/load-generator.js';
import { startLoad, type RunningLoad } from '../steady-state/running-load.js';
import { BlastRadius } from '../targets/blast-radius.js';
import { containerIdOf, TargetResolver, type ContainerRef } from '../targets/resolve-target.js';
import { summarize } from '../experiment/describe.js';
import { currentTest } from './current-test.js';
import { PreflightGate } from './preflight-gate.js';
import type { PreflightResult } from './preflight.js';
import { TestSeeds } from './test-seeds.js';
import { experimentEvent } from '../report/chaos-metrics.js';
import { sendChaosEvent } from '../report/metrics-channel.js';

export type { FaultSpec } from '../faults/kinds.js';

/** The spec of one kind: `{ kind, target, seed?, ...its parameters }`. */
export type SpecOf<K extends FaultKindName> = Extract<FaultSpec, { kind: K }>;

export interface ChaosOptions {
  /**
   * Containers (ids or names) that may be targeted although Testcontainers did
   * not start them. Default: none; only containers labelled by Testcontainers.
   */
  allowTargets?: string[];
  /** Seed of the run; every fault's seed derives from it. Default: random, reported. */
  seed?: number;
  /** Result of the plugin's preflight; computed on first inject when absent. */
  preflight?: PreflightResult;
  /** Where experiments report their phases; false for silence. Default: console.info. */
  progress?: ((line: string) => void) | false;
  /** Unix socket of the plugin's metrics server; events go there when set. */
  metricsSocket?: string;
}

export class Chaos {
  readonly seed: number;
  readonly resolver: TargetResolver;
  private readonly radius: BlastRadius;
  private readonly active = new Set<ActiveFault<object>>();
  private readonly seeds: TestSeeds;
  private readonly gate: PreflightGate;
  private readonly reap: () => Promise<void>;
  private journalInstance?: Journal;
  private nextId = 1;
  private readonly progress: ChaosOptions['progress'];
  private readonly metricsSocket?: string;

  constructor(options: ChaosOptions = {}, resolver = new TargetResolver()) {
    this.progress = options.progress;
    this.metricsSocket = options.metricsSocket;
    this.seed = options.seed ?? randomSeed();
    this.resolver = resolver;
    this.radius = new BlastRadius(resolver, options.allowTargets);
    this.seeds = new TestSeeds(this.seed);
    this.gate = new PreflightGate(options.preflight);
    this.reap = reapOnce(() => this.journal());
  }

  /** Lets a container that Testcontainers did not start be targeted. */
  allow(ref: ContainerRef): void {
    this.radius.allow(ref);
  }

  /** Faults in force now. */
  activeFaults(): ActiveFault<object>[] {
    return [...this.active];
  }

  /**
   * Reverts every fault in force, newest first (a later fault may stand in the
   * way of undoing an earlier one: a paused container refuses the exec that
   * removes disk-fill's file); errors are collected, every revert is tried.
   */
  async revertAll(): Promise<void> {
    const failed: unknown[] = [];
    for (const f of [...this.active].reverse()) await f.revert().catch((err: unknown) => failed.push(err));
    if (failed.length) throw new AggregateError(failed, `${failed.length} fault(s) failed to revert`);
  }

  /**
   * Checks a spec without touching anything: returns the kind's parsed
   * parameters or throws ChaosSpecError naming every wrong field.
   */
  validate(spec: FaultSpec): ValidSpec {
    return validateSpec(spec);
  }

  /**
   * Runs an experiment: baseline, inject, observe (abort on breach), revert,
   * recovery. Returns a plain result; a thrown error or a cancelled test still
   * reverts every fault, and the result (what was measured so far) is attached
   * to the test's meta (`task.meta.vitestChaos.experiments`) for reporters.
   */
  async experiment(opts: ExperimentOptions<FaultSpec>): Promise<ExperimentResult> {
    validateExperiment(opts, this);
    const test = currentTest();
    await this.gate.require(test);
    const result = await runExperiment(opts, {
      injector: this,
      seed: opts.seed ?? this.seeds.next(test, 'experiment'),
      signal: test?.context.signal,
      progress:
        this.progress === false
          ? undefined
          : (line) => (this.progress || console.info)(`[vitest-chaos] ${opts.name}: ${line}`),
    });
    if (test) {
      const meta = test.meta as { vitestChaos?: { experiments: ExperimentResult[] } };
      meta.vitestChaos ??= { experiments: [] };
      meta.vitestChaos.experiments.push(result);
      await test.context.annotate(summarize(result), 'vitest-chaos').catch(() => undefined);
      // A property of its own in JUnit output, for CI tools that read properties by name.
      await test.context.annotate(`${result.name}: ${result.verdict}`, 'vitest-chaos.verdict').catch(() => undefined);
    }
    await sendChaosEvent(this.metricsSocket, experimentEvent(result));
    if (result.error && !test?.context.signal.aborted) throw new Error(`chaos.experiment(${opts.name}): ${result.error}`);
    return result;
  }

  /** Starts steady traffic now and records every request; `stop()` ends it and returns the totals. */
  load(opts: LoadOptions & { windowMs?: number }): RunningLoad {
    return startLoad(opts);
  }

  /** Injects a fault; it is in force when the promise resolves. */
  async inject<K extends FaultKindName>(spec: SpecOf<K>): Promise<ActiveFault<StatsOf<K>>> {
    const { kind, params } = validateSpec(spec);
    const test = currentTest();
    await this.gate.require(test, kind);
    const impl = faultKinds.get(kind)!;
    const where = `chaos.inject(${kind})`;
    // Before resolving: a target a dead run left paused or stopped is running again.
    await this.reap();
    const target = await this.radius.resolve(spec.target, 'target', where, { states: impl.targetStates });
    const seed = spec.seed ?? this.seeds.next(test);
    const ctx: FaultContext = {
      kernel: kernel(),
      resolver: this.resolver,
      docker: this.resolver.docker,
      journal: () => this.journal(),
      seed,
      resolvePeer: (ref) => this.radius.resolve(ref, 'peer', where, { readOnly: true }),
    };
    const t0 = performance.now();
    const applied = await impl.apply(params, target, ctx);
    const applySeconds = (performance.now() - t0) / 1000;
    const fault = new ActiveFault<StatsOf<K>>(
      `f${this.nextId++}`,
      kind,
      { id: target.id, name: target.name },
      seed,
      plainParams(params),
      applied,
      () => {
        this.active.delete(fault);
        void sendChaosEvent(this.metricsSocket, { type: 'revert', kind });
      },
    );
    this.active.add(fault);
    await sendChaosEvent(this.metricsSocket, { type: 'inject', kind, applySeconds });
    test?.context.onTestFinished(() => fault.revert());
    return fault;
  }

  /** The write-ahead journal (created on first use). */
  journal(): Journal {
    this.journalInstance ??= new Journal();
    return this.journalInstance;
  }
}

/** Parameters as plain data: a container object becomes "container:<short id>". */
function plainParams(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) {
    if (v instanceof RegExp) out[k] = String(v);
    else if (v && typeof v === 'object' && typeof (v as { getId?: unknown }).getId === 'function')
      out[k] = `container:${containerIdOf(v as ContainerRef).slice(0, 12)}`;
    else out[k] = v;
  }
  return out;
}

export function createChaos(options?: ChaosOptions): Chaos {
  return new Chaos(options);
}

export type { Kernel, RunningLoad };
