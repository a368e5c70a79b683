// The public verbs. Every fault is validated before anything is applied, bound
// to the running Vitest test (reverted when it ends, however it ends), and
// listed so revertAll() can undo everything at the end of a file.
import { getCurrentTest } from '@vitest/runner';
import { z } from 'zod';
import { faultKinds } from '../faults/registry.js';
import type { FaultContext } from '../faults/fault-kind.js';
import type { NetworkLatencyParams, NetworkLossParams, NetworkPartitionParams } from '../faults/registry.js';
import type { NetworkBandwidthParams, NetworkCorruptParams, NetworkDuplicateParams } from '../faults/registry.js';
import type { ContainerPauseParams, ContainerRestartParams, ContainerStopParams, CrashOnSyscallParams, ProcessKillParams } from '../faults/registry.js';
import type { DnsParams, HttpParams, NetworkResetParams, NetworkSlowCloseParams, NetworkTimeoutParams } from '../faults/registry.js';
import type { CpuStressParams, CpuThrottleParams, DiskFillParams, IoThrottleParams, MemoryLimitParams, MemoryStressParams } from '../faults/registry.js';
import { Journal } from '../journal/journal.js';
import { kernel, type Kernel } from '../kernel/kernel.js';
import { containerIdOf, TargetError, TargetResolver, type ContainerRef, type ResolvedTarget, type TargetState } from '../targets/resolve-target.js';
import { runExperiment, validateExperiment, type ExperimentOptions } from '../experiment/experiment.js';
import type { ExperimentResult } from '../experiment/result.js';
import { LoadGenerator, type LoadOptions } from '../steady-state/load-generator.js';
import { Recorder } from '../steady-state/recorder.js';
import { ActiveFault } from './active-fault.js';
import { summarize } from './matchers.js';
import { ChaosSpecError, PreflightError, problemsFromZod } from './errors.js';
import { formatPreflight, preflight as runPreflight, type PreflightResult } from './preflight.js';
import { deriveSeed, randomSeed } from './seed.js';

interface Common {
  /** The container to inject into: a StartedTestContainer, or the id of one this run started. */
  target: ContainerRef;
  /** Seed for the fault's random choices; default: derived from the run's seed and the test. */
  seed?: number;
}

export type FaultSpec =
  | ({ kind: 'network-loss' } & NetworkLossParams & Common)
  | ({ kind: 'network-partition' } & NetworkPartitionParams & Common)
  | ({ kind: 'network-latency' } & NetworkLatencyParams & Common)
  | ({ kind: 'network-corrupt' } & NetworkCorruptParams & Common)
  | ({ kind: 'network-duplicate' } & NetworkDuplicateParams & Common)
  | ({ kind: 'network-bandwidth' } & NetworkBandwidthParams & Common)
  | ({ kind: 'network-reset' } & NetworkResetParams & Common)
  | ({ kind: 'network-timeout' } & NetworkTimeoutParams & Common)
  | ({ kind: 'network-slow-close' } & NetworkSlowCloseParams & Common)
  | ({ kind: 'http' } & HttpParams & Common)
  | ({ kind: 'dns' } & DnsParams & Common)
  | ({ kind: 'process-kill' } & ProcessKillParams & Common)
  | ({ kind: 'container-pause' } & ContainerPauseParams & Common)
  | ({ kind: 'container-stop' } & ContainerStopParams & Common)
  | ({ kind: 'container-restart' } & ContainerRestartParams & Common)
  | ({ kind: 'crash-on-syscall' } & CrashOnSyscallParams & Common)
  | ({ kind: 'cpu-throttle' } & CpuThrottleParams & Common)
  | ({ kind: 'cpu-stress' } & CpuStressParams & Common)
  | ({ kind: 'memory-stress' } & MemoryStressParams & Common)
  | ({ kind: 'memory-limit' } & MemoryLimitParams & Common)
  | ({ kind: 'io-throttle' } & IoThrottleParams & Common)
  | ({ kind: 'disk-fill' } & DiskFillParams & Common);

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
}

const commonSchema = z.object({
  seed: z
    .number({ error: 'an integer from 0 to 2147483647' })
    .int({ error: 'an integer from 0 to 2147483647' })
    .min(0, { error: 'an integer from 0 to 2147483647' })
    .max(0x7fffffff, { error: 'an integer from 0 to 2147483647' })
    .optional(),
});

export class Chaos {
  readonly seed: number;
  private readonly allowed = new Set<string>();
  private readonly active = new Set<ActiveFault>();
  private readonly perTestCount = new Map<string, number>();
  private preflightResult?: Promise<PreflightResult>;
  private journalInstance?: Journal;
  private reaped?: Promise<void>;
  private nextId = 1;
  readonly resolver: TargetResolver;
  private readonly progress: ChaosOptions['progress'];

  constructor(options: ChaosOptions = {}, resolver = new TargetResolver()) {
    this.progress = options.progress;
    this.seed = options.seed ?? randomSeed();
    for (const t of options.allowTargets ?? []) this.allowed.add(t);
    if (options.preflight) this.preflightResult = Promise.resolve(options.preflight);
    this.resolver = resolver;
  }

  /** Lets a container that Testcontainers did not start be targeted. */
  allow(ref: ContainerRef): void {
    this.allowed.add(containerIdOf(ref));
  }

  /** Faults in force now. */
  activeFaults(): ActiveFault[] {
    return [...this.active];
  }

  /** Reverts every fault in force; errors are collected, every revert is tried. */
  async revertAll(): Promise<void> {
    const results = await Promise.allSettled([...this.active].map((f) => f.revert()));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length) {
      throw new AggregateError(failed.map((f) => f.reason), `${failed.length} fault(s) failed to revert`);
    }
  }

  /**
   * Checks a spec without touching anything: returns the kind's parsed
   * parameters or throws ChaosSpecError naming every wrong field.
   */
  validate(spec: FaultSpec): { kind: string; params: Record<string, unknown> } {
    const where = `chaos.inject(${typeof spec?.kind === 'string' ? spec.kind : '?'})`;
    if (spec === null || typeof spec !== 'object') {
      throw new ChaosSpecError('chaos.inject', [{ field: 'spec', value: spec, expected: 'an object { kind, target, ... }' }]);
    }
    const { kind, target, seed, ...rest } = spec as unknown as Record<string, unknown>;
    const impl = typeof kind === 'string' ? faultKinds.get(kind) : undefined;
    const problems = [];
    if (!impl) {
      problems.push({ field: 'kind', value: kind, expected: `one of ${[...faultKinds.keys()].map((k) => `"${k}"`).join(', ')}` });
    }
    if (typeof target !== 'string' && typeof (target as { getId?: unknown } | null)?.getId !== 'function') {
      problems.push({ field: 'target', value: target, expected: 'a started container (StartedTestContainer) or a container id' });
    }
    const common = commonSchema.safeParse({ seed }, { reportInput: true });
    if (!common.success) problems.push(...problemsFromZod(common.error, { seed }));
    let params: Record<string, unknown> = {};
    if (impl) {
      const parsed = impl.schema.safeParse(rest, { reportInput: true });
      if (parsed.success) params = parsed.data as Record<string, unknown>;
      else problems.push(...problemsFromZod(parsed.error, rest));
    }
    if (problems.length) throw new ChaosSpecError(where, problems);
    return { kind: kind as string, params };
  }

  /**
   * Runs an experiment: baseline, inject, observe (abort on breach), revert,
   * recovery. Returns a plain result; a thrown error or a cancelled test still
   * reverts every fault, and the result (what was measured so far) is attached
   * to the test's meta (`task.meta.vitestChaos.experiments`) for reporters.
   */
  async experiment(opts: ExperimentOptions<FaultSpec>): Promise<ExperimentResult> {
    validateExperiment(opts, this);
    const test = getCurrentTest();
    await this.requirePreflight(test);
    const result = await runExperiment(opts, {
      injector: this,
      seed: opts.seed ?? this.derivedSeed(test, 'experiment'),
      signal: test?.context.signal,
      progress: this.progress === false ? undefined : (line) => (this.progress || console.info)(`[vitest-chaos] ${opts.name}: ${line}`),
    });
    if (test) {
      const meta = test.meta as { vitestChaos?: { experiments: ExperimentResult[] } };
      meta.vitestChaos ??= { experiments: [] };
      meta.vitestChaos.experiments.push(result);
      await test.context.annotate(summarize(result), 'vitest-chaos').catch(() => undefined);
    }
    if (result.error && !test?.context.signal.aborted) throw new Error(`chaos.experiment(${opts.name}): ${result.error}`);
    return result;
  }

  /**
   * Starts steady traffic now and records every request; `stop()` ends it and
   * returns the totals. For load outside an experiment.
   */
  load(opts: LoadOptions & { windowMs?: number }): RunningLoad {
    const recorder = new Recorder(100, opts.windowMs ?? 10_000);
    recorder.setPhase('load');
    const gen = new LoadGenerator(opts, recorder);
    return {
      recorder,
      window: (ms = 1000) => recorder.window(recorder.now(), ms),
      summary: () => recorder.phaseStats('load')!,
      stop: () => gen.stop(),
    };
  }

  /** Injects a fault; it is in force when the promise resolves. */
  async inject(spec: FaultSpec): Promise<ActiveFault> {
    const { kind, params } = this.validate(spec);
    const test = getCurrentTest();
    await this.requirePreflight(test);
    const impl = faultKinds.get(kind)!;
    const where = `chaos.inject(${kind})`;
    // Before resolving: a target a dead run left paused or stopped is running again.
    await this.reapOnce();
    const target = await this.resolveAllowed(spec.target, 'target', where, false, impl.targetStates);
    const seed = spec.seed ?? this.derivedSeed(test);
    const ctx: FaultContext = {
      kernel: kernel(),
      resolver: this.resolver,
      docker: this.resolver.docker,
      journal: () => this.journal(),
      seed,
      resolvePeer: (ref) => this.resolveAllowed(ref, 'peer', where, true),
    };
    const applied = await impl.apply(params, target, ctx);
    const fault = new ActiveFault(
      `f${this.nextId++}`,
      kind,
      { id: target.id, name: target.name },
      seed,
      plainParams(params),
      applied,
      (f) => this.active.delete(f),
    );
    this.active.add(fault);
    test?.context.onTestFinished(() => fault.revert());
    return fault;
  }

  /**
   * The seed of the test's n-th fault (or, with a tag, n-th experiment): from
   * the run's seed, the test's name and that position, so a test replays alike
   * whatever ran beside it.
   */
  private derivedSeed(test: ReturnType<typeof getCurrentTest>, tag?: string): number {
    const testKey = test ? `${test.file?.filepath ?? ''}::${fullName(test)}` : '(outside a test)';
    const counter = tag ? `${testKey}#${tag}` : testKey;
    const n = (this.perTestCount.get(counter) ?? 0) + 1;
    this.perTestCount.set(counter, n);
    return tag ? deriveSeed(this.seed, testKey, tag, n) : deriveSeed(this.seed, testKey, n);
  }

  /** The write-ahead journal (created on first use). */
  journal(): Journal {
    this.journalInstance ??= new Journal();
    return this.journalInstance;
  }

  /** Reverts what dead runs left, once per instance, before our first change. */
  private reapOnce(): Promise<void> {
    this.reaped ??= (async () => {
      const { reverted, failed } = await this.journal().reap();
      for (const e of reverted) console.warn(`vitest-chaos: reverted what a dead run left: ${e.description} (pid ${e.pid})`);
      for (const f of failed) console.warn(`vitest-chaos: could not revert ${f.entry.description}: ${f.error}`);
    })();
    return this.reaped;
  }

  private async requirePreflight(test: ReturnType<typeof getCurrentTest>): Promise<void> {
    this.preflightResult ??= runPreflight();
    const result = await this.preflightResult;
    if (result.ok) return;
    const reason = `vitest-chaos cannot inject faults on this machine:\n${formatPreflight(result)}`;
    if (test) test.context.skip(reason);
    throw new PreflightError(reason);
  }

  private async resolveAllowed(
    ref: ContainerRef,
    field: string,
    where: string,
    readOnly = false,
    states?: readonly TargetState[],
  ): Promise<ResolvedTarget> {
    let t: ResolvedTarget;
    try {
      t = await this.resolver.resolve(ref, states);
    } catch (err) {
      if (err instanceof TargetError) {
        throw new ChaosSpecError(where, [{ field, value: safeId(ref), expected: `a running container (${err.message})` }]);
      }
      throw err;
    }
    const allowed =
      t.labels['org.testcontainers'] === 'true' ||
      this.allowed.has(t.id) ||
      this.allowed.has(t.name) ||
      [...this.allowed].some((a) => a.length >= 12 && t.id.startsWith(a));
    // Naming a peer only reads its address; the blast radius is about what we change.
    if (!allowed && !readOnly) {
      throw new ChaosSpecError(where, [
        {
          field,
          value: t.name,
          expected:
            'a container this run started with Testcontainers, or one allowed with chaos.allow() / the plugin option allowTargets (the blast radius is enforced)',
        },
      ]);
    }
    return t;
  }
}

/** Parameters as plain data: a container object becomes "container:<short id>". */
function plainParams(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) {
    if (v instanceof RegExp) out[k] = String(v);
    else if (v && typeof v === 'object' && typeof (v as { getId?: unknown }).getId === 'function') out[k] = `container:${containerIdOf(v as ContainerRef).slice(0, 12)}`;
    else out[k] = v;
  }
  return out;
}

function safeId(ref: ContainerRef): string {
  try {
    return containerIdOf(ref);
  } catch {
    return String(ref);
  }
}

function fullName(task: { name: string; suite?: { name: string; suite?: unknown } }): string {
  const names = [task.name];
  let s = task.suite as { name: string; suite?: unknown } | undefined;
  while (s) {
    if (s.name) names.unshift(s.name);
    s = s.suite as typeof s;
  }
  return names.join(' > ');
}

export interface RunningLoad {
  recorder: Recorder;
  /** The last `ms` of traffic (default 1000). */
  window(ms?: number): import('../steady-state/recorder.js').WindowStats;
  /** Everything since the start. */
  summary(): import('../steady-state/recorder.js').WindowStats;
  stop(): Promise<import('../steady-state/load-generator.js').LoadTotals>;
}

export function createChaos(options?: ChaosOptions): Chaos {
  return new Chaos(options);
}

export type { Kernel };
