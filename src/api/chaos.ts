// The public verbs, composed from units with one job each: spec validation
// (faults/validate-spec), the blast radius (targets/blast-radius), per-test
// seeds (test-seeds), the journal's reaper (journal/reap-once), the preflight
// gate (preflight-gate), steady load (steady-state/running-load) and the
// experiment runner. Every fault is bound to the running Vitest test (reverted
// when it ends, however it ends) and listed so revertAll() can undo the rest.
import { ChaosSpecError } from '../contracts/errors.js';
import { deriveSeed, randomSeed } from '../contracts/seed.js';
import { runExperiment, validateExperiment, type ExperimentOptions } from '../experiment/experiment.js';
import type { ExperimentResult } from '../experiment/result.js';
import type { AppliedFault, FaultContext } from '../faults/fault-kind.js';
import { ActiveFault, AppliedTargets, type FaultTargetInfo } from '../faults/fault-handle.js';
import { faultKinds, type FaultKindName, type FaultSpec, type StatsOf } from '../faults/kinds.js';
import { validateSpec, type ValidSpec } from '../faults/validate-spec.js';
import { Journal } from '../journal/journal.js';
import { reapOnce } from '../journal/reap-once.js';
import { kernel, type Kernel } from '../kernel/kernel.js';
import type { LoadOptions } from '../steady-state/load-generator.js';
import { startLoad, type RunningLoad } from '../steady-state/running-load.js';
import { BlastRadius } from '../targets/blast-radius.js';
import { chooseTargets } from '../targets/choose-targets.js';
import { containerIdOf, TargetResolver, type ContainerRef, type ResolvedTarget } from '../targets/resolve-target.js';
import { summarize } from '../experiment/describe.js';
import { joinControlChannel, refuseIfStopped, type ControlMember, type FaultSummary } from './control-channel.js';
import { InjectionRate } from './injection-rate.js';
import { currentTest } from './current-test.js';
import { PreflightGate } from './preflight-gate.js';
import type { PreflightResult } from './preflight.js';
import { TestSeeds } from './test-seeds.js';
import { experimentEvent } from '../report/chaos-metrics.js';
import { KernelObserver } from '../observe/kernel-observer.js';
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
  /**
   * Validate and choose targets as for real, apply nothing; faults say `dryRun`
   * and experiments end with the verdict 'dry-run'. Default: VITEST_CHAOS_DRY_RUN=1, else false.
   */
  dryRun?: boolean;
  /** Most targets one fault, or one experiment's faults together, may change. Default: no limit. */
  maxTargets?: number;
  /** Most injections in any 60 s of the run (all workers together). Default: no limit. */
  maxInjectionsPerMinute?: number;
  /** The run these injections count towards (the Vitest main process). Default: this process. */
  runPid?: number;
}

/** A spec, checked, with its candidates resolved and chosen: what inject would change. */
export interface FaultPlan {
  kind: string;
  params: Record<string, unknown>;
  seed: number;
  /** The chosen targets, in the order they are applied. */
  chosen: ResolvedTarget[];
}

export class Chaos implements ControlMember {
  readonly seed: number;
  readonly dryRun: boolean;
  readonly maxTargets?: number;
  private readonly rate: InjectionRate;
  private readonly runPid: number;
  readonly resolver: TargetResolver;
  private readonly radius: BlastRadius;
  private readonly active = new Set<ActiveFault<object>>();
  private readonly byTest = new WeakMap<object, Set<ActiveFault<object>>>();
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
    this.dryRun = options.dryRun ?? process.env.VITEST_CHAOS_DRY_RUN === '1';
    this.maxTargets = options.maxTargets;
    this.runPid = options.runPid ?? process.pid;
    this.rate = new InjectionRate(options.maxInjectionsPerMinute, this.runPid);
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

  /** Reverts every fault in force; errors are collected, every revert is tried. */
  async revertAll(): Promise<void> {
    // Newest first, one at a time: a fault may depend on the state an older one
    // left (disk-fill's file cannot be removed from a container that is still paused).
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
    if (!this.dryRun) await this.gate.require(test);
    const seed = opts.seed ?? this.seeds.next(test, 'experiment');
    await this.checkExperimentLimits(opts, seed);
    if (!this.dryRun) this.loadPrograms(opts.faults);
    const result = await runExperiment(opts, {
      injector: this,
      seed,
      signal: test?.context.signal,
      progress: this.progress === false ? undefined : (line) => (this.progress || console.info)(`[vitest-chaos] ${opts.name}: ${line}`),
    });
    if (this.dryRun && !result.error) {
      result.verdict = 'dry-run';
      const b = result.phases.baseline;
      result.reason = `dry run: nothing was applied to ${new Set(result.faults.flatMap((f) => f.targets ?? [])).size} chosen target(s); baseline ${b ? `${b.requests} requests, p99 ${b.p99Ms?.toFixed(1) ?? '-'} ms, error rate ${b.errorRate ?? '-'}` : 'not measured'}`;
    }
    if (test) {
      const meta = test.meta as { vitestChaos?: { experiments: ExperimentResult[] } };
      meta.vitestChaos ??= { experiments: [] };
      meta.vitestChaos.experiments.push(result);
      await annotate(test, summarize(result), 'vitest-chaos');
      // A property of its own in JUnit output, for CI tools that read properties by name.
      await annotate(test, `${result.name}: ${result.verdict}`, 'vitest-chaos.verdict');
    }
    await sendChaosEvent(this.metricsSocket, experimentEvent(result));
    if (result.error && !test?.context.signal.aborted) throw new Error(`chaos.experiment(${opts.name}): ${result.error}`);
    return result;
  }

  /**
   * Every fault of the experiment planned before anything runs: one fault over
   * maxTargets, all of them together over it (distinct containers), or more
   * faults than the injection rate allows now, refuse the experiment whole.
   */
  private async checkExperimentLimits(opts: ExperimentOptions<FaultSpec>, seed: number): Promise<void> {
    const where = `chaos.experiment(${opts.name})`;
    refuseIfStopped(where);
    const specs = opts.faults.map((s) => (s && typeof s === 'object' && 'fault' in s ? s.fault : s) as FaultSpec);
    this.rate.take(where, specs.length, { countOnly: true });
    if (this.maxTargets === undefined) return;
    const touched = new Map<string, string>();
    for (const [i, spec] of specs.entries()) {
      const plan = await this.plan(spec, spec.seed ?? deriveSeed(seed, 'fault', i));
      for (const t of plan.chosen) touched.set(t.id, t.name);
    }
    if (touched.size > this.maxTargets) {
      throw new ChaosSpecError(where, [
        {
          field: 'faults',
          value: `${touched.size} distinct targets (${[...touched.values()].join(', ')})`,
          expected: `at most ${this.maxTargets} per experiment (the plugin option maxTargets is ${this.maxTargets})`,
        },
      ]);
    }
  }

  /** Loads the eBPF objects the faults need now, before any traffic is measured. */
  private loadPrograms(faults: ExperimentOptions<FaultSpec>['faults']): void {
    const k = kernel();
    for (const step of faults) {
      const spec = (step && typeof step === 'object' && 'fault' in step ? step.fault : step) as { kind?: unknown };
      for (const p of faultKinds.get(String(spec.kind))?.programs ?? []) void k[p];
    }
  }

  /**
   * Watches what the kernel does to a container (TCP retransmits, connects and their
   * errors, runqueue delay, block I/O waits and bytes, OOM kills, process exits), from
   * now until `stop()` or the end of the test: `obs.snapshot()` is what it saw so far.
   * Read-only: any running container may be observed (a restarted one is followed).
   */
  async observe(container: ContainerRef): Promise<KernelObserver> {
    const where = 'chaos.observe()';
    const test = currentTest();
    await this.gate.require(test);
    const t = await this.radius.resolve(container, 'container', where, { readOnly: true });
    const obs = new KernelObserver(kernel(), t, () => this.relocate(t));
    test?.context.onTestFinished(() => void obs.stop());
    return obs;
  }

  /** A container again after a restart; by name when it was re-created under a new id. */
  private relocate(t: ResolvedTarget): Promise<ResolvedTarget | null> {
    return this.resolver
      .resolve(t.id)
      .catch(() => this.resolver.resolve(t.name))
      .catch(() => null);
  }

  /**
   * Observers on every target the experiment's faults choose (with the seeds the
   * experiment will inject them with) and on `also` (its `observe` option), started
   * now; the experiment stops them.
   */
  async observeTargets(specs: readonly { spec: FaultSpec; seed: number }[], also: readonly ContainerRef[] = []): Promise<KernelObserver[]> {
    if (this.dryRun) return [];
    const targets = new Map<string, ResolvedTarget>();
    for (const { spec, seed } of specs) {
      const plan = await this.plan(spec, seed);
      for (const t of plan.chosen) if (t.state !== 'stopped' && !targets.has(t.id)) targets.set(t.id, t);
    }
    for (const [i, ref] of also.entries()) {
      const t = await this.radius.resolve(ref, `observe.${i}`, 'chaos.experiment()', { readOnly: true });
      if (!targets.has(t.id)) targets.set(t.id, t);
    }
    const observers: KernelObserver[] = [];
    try {
      for (const t of targets.values()) {
        observers.push(new KernelObserver(kernel(), t, () => this.relocate(t)));
      }
    } catch (err) {
      for (const o of observers) o.stop();
      throw err;
    }
    return observers;
  }

  /** Starts steady traffic now and records every request; `stop()` ends it and returns the totals. */
  load(opts: LoadOptions & { windowMs?: number }): RunningLoad {
    return startLoad(opts);
  }

  /**
   * Injects a fault; it is in force on all of its chosen targets when the
   * promise resolves (in dry run: nothing is applied, `fault.dryRun` is true).
   */
  async inject<K extends FaultKindName>(spec: SpecOf<K>): Promise<ActiveFault<StatsOf<K>>> {
    return this.injectOn(spec, Number.POSITIVE_INFINITY);
  }

  /**
   * Checks a spec and resolves and chooses its targets exactly as inject does,
   * limits included, and changes nothing.
   */
  async plan(spec: FaultSpec, seed?: number): Promise<FaultPlan> {
    return this.planValid(validateSpec(spec), spec, seed);
  }

  /** plan() of a spec validated already (inject validates it once). */
  private async planValid(v: ValidSpec, spec: FaultSpec, seed?: number): Promise<FaultPlan> {
    const where = `chaos.inject(${v.kind})`;
    const impl = faultKinds.get(v.kind)!;
    const candidates: ResolvedTarget[] = [];
    for (const [i, ref] of v.targets.entries()) {
      const field = v.targets.length > 1 || Array.isArray(spec.target) ? `target.${i}` : 'target';
      const t = await this.radius.resolve(ref, field, where, { states: impl.targetStates });
      const twin = candidates.findIndex((c) => c.id === t.id);
      if (twin >= 0)
        throw new ChaosSpecError(where, [{ field, value: t.name, expected: `a container not already listed (it is target.${twin})` }]);
      candidates.push(t);
    }
    const faultSeed = seed ?? spec.seed ?? this.seeds.next(currentTest());
    const chosen = chooseTargets(candidates.length, v.mode, v.value, faultSeed).map((i) => candidates[i] as ResolvedTarget);
    if (this.maxTargets !== undefined && chosen.length > this.maxTargets) {
      throw new ChaosSpecError(where, [
        {
          field: 'target',
          value: `${chosen.length} targets (${chosen.map((t) => t.name).join(', ')})`,
          expected: `at most ${this.maxTargets} per fault (the plugin option maxTargets is ${this.maxTargets}; mode "${v.mode}" chose ${chosen.length})`,
        },
      ]);
    }
    return { kind: v.kind, params: v.params, seed: faultSeed, chosen };
  }

  /**
   * inject(), applied at first to only `count` of the chosen targets;
   * `fault.widen(n)` applies it to the first n (a gradual rollout).
   */
  async injectOn<K extends FaultKindName>(spec: SpecOf<K>, count: number): Promise<ActiveFault<StatsOf<K>>> {
    const valid = validateSpec(spec);
    const { kind } = valid;
    const where = `chaos.inject(${kind})`;
    refuseIfStopped(where);
    const test = currentTest();
    if (!this.dryRun) await this.gate.require(test, kind);
    const impl = faultKinds.get(kind)!;
    // Before resolving: a target a dead run left paused or stopped is running again.
    if (!this.dryRun) await this.reap();
    const plan = await this.planValid(valid, spec);
    this.rate.take(where);
    const on = new AppliedTargets<StatsOf<K>>();
    const info = (t: ResolvedTarget): FaultTargetInfo => ({ id: t.id, name: t.name });
    if (this.dryRun) {
      for (const t of plan.chosen) on.add(info(t), { revert: () => undefined, stats: () => ({}) as StatsOf<K> });
    } else {
      await joinControlChannel(this, { runPid: this.runPid, journalDir: this.journal().dir });
    }
    // Applies the fault to chosen targets [from, to); all or nothing.
    const applyRange = async (to: number) => {
      const from = on.parts.length;
      const upto = Math.min(to, plan.chosen.length);
      const mine = new AppliedTargets<StatsOf<K>>();
      try {
        for (let i = from; i < upto; i++) {
          const t = plan.chosen[i] as ResolvedTarget;
          const ctx: FaultContext = {
            kernel: kernel(),
            resolver: this.resolver,
            docker: this.resolver.docker,
            journal: () => this.journal(),
            seed: i === 0 ? plan.seed : deriveSeed(plan.seed, 'target', i),
            resolvePeer: (ref) => this.radius.resolve(ref, 'peer', where, { readOnly: true }),
          };
          mine.add(info(t), (await impl.apply(plan.params, t, ctx)) as AppliedFault<StatsOf<K>>);
        }
      } catch (err) {
        await mine.revert().catch(() => undefined);
        throw err;
      }
      for (const p of mine.parts) on.add(p.target, p.applied);
    };
    const testFaults = test ? this.faultsOfTest(test) : undefined;
    const t0 = performance.now();
    if (!this.dryRun) await applyRange(Math.max(1, count));
    const applySeconds = (performance.now() - t0) / 1000;
    const fault: ActiveFault<StatsOf<K>> = new ActiveFault<StatsOf<K>>(
      `f${this.nextId++}`,
      kind,
      on,
      plan.seed,
      plainParams(plan.params),
      () => {
        this.active.delete(fault);
        testFaults?.delete(fault);
        if (!fault.dryRun) void sendChaosEvent(this.metricsSocket, { type: 'revert', kind });
        warnIfUnmatched(fault, test);
      },
      {
        dryRun: this.dryRun,
        matched: (s) => impl.matched(s),
        matchedWhat: impl.matchedWhat,
        chosen: plan.chosen.map(info),
        widen: this.dryRun
          ? undefined
          : async (n) => {
              refuseIfStopped(`${where}.widen(${n})`);
              await applyRange(n);
            },
      },
    );
    this.active.add(fault);
    if (!this.dryRun) await sendChaosEvent(this.metricsSocket, { type: 'inject', kind, applySeconds });
    testFaults?.add(fault);
    // A stop that came while we applied found nothing to revert: revert now.
    try {
      refuseIfStopped(where);
    } catch (err) {
      await fault.revert();
      throw err;
    }
    return fault;
  }

  /**
   * The faults of a test still in force, reverted (newest first) when it ends however it
   * ends. One hook per test, not one per fault: a test that injects thousands of
   * times (a soak) would otherwise keep every reverted fault alive in its hooks until it ends.
   */
  private faultsOfTest(test: NonNullable<ReturnType<typeof currentTest>>): Set<ActiveFault<object>> {
    let faults = this.byTest.get(test);
    if (!faults) {
      const mine = new Set<ActiveFault<object>>();
      faults = mine;
      this.byTest.set(test, mine);
      test.context.onTestFinished(async () => {
        this.byTest.delete(test); // a retry of the test registers its own hook
        const failed: unknown[] = [];
        for (const f of [...mine].reverse()) await f.revert().catch((err: unknown) => failed.push(err));
        if (failed.length === 1) throw failed[0];
        if (failed.length) throw new AggregateError(failed, `${failed.length} fault(s) failed to revert`);
      });
    }
    return faults;
  }

  /** For the kill switch: what is in force. */
  faults(): FaultSummary[] {
    return [...this.active].map((f) => ({ id: f.id, kind: f.kind, targets: f.targets.map((t) => t.name), description: f.toString() }));
  }

  /** For the kill switch: reverts everything in force, every revert tried. */
  async stopAll(): Promise<{ reverted: string[]; errors: string[] }> {
    const faults = [...this.active];
    const results = await Promise.allSettled(faults.map((f) => f.revert()));
    const reverted: string[] = [];
    const errors: string[] = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') reverted.push(String(faults[i]));
      else errors.push(`${faults[i]}: ${(r.reason as Error)?.message ?? r.reason}`);
    });
    return { reverted, errors };
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
export type { KernelObserver };

/**
 * A fault that reached nothing by the time it was reverted did not test
 * anything: say so (console and the test's annotations), naming the fault.
 * An experiment says it in its verdict ('inconclusive') as well.
 */
function warnIfUnmatched(fault: ActiveFault<object>, test: ReturnType<typeof currentTest>): void {
  let matched: number | null;
  try {
    matched = fault.matched();
  } catch {
    return;
  }
  if (matched !== 0) return;
  const message = `vitest-chaos: ${fault} matched nothing while in force (0 ${fault.matchedWhat ?? 'things it counts'}): it had no effect to test`;
  console.warn(message);
  if (!test) return;
  // A test that cycles thousands of faults (a soak) would keep thousands of annotations:
  // the first ones are attached, then one line saying the rest are on the console only.
  const n = (unmatchedAnnotations.get(test) ?? 0) + 1;
  unmatchedAnnotations.set(test, n);
  if (n <= MAX_UNMATCHED_ANNOTATIONS) void annotate(test, message, 'warning');
  else if (n === MAX_UNMATCHED_ANNOTATIONS + 1)
    void annotate(test, `vitest-chaos: more faults of this test matched nothing; they are reported on the console only`, 'warning');
}

const MAX_UNMATCHED_ANNOTATIONS = 10;
const unmatchedAnnotations = new WeakMap<object, number>();

/**
 * Adds an annotation to the test while it runs. Vitest throws (synchronously) once the test
 * has finished, which is when a fault bound to it is reverted: the console line stands then.
 */
async function annotate(test: NonNullable<ReturnType<typeof currentTest>>, message: string, type: string): Promise<void> {
  try {
    await test.context.annotate(message, type);
  } catch {
    // the test is over: nothing to attach the note to
  }
}
