// The handle chaos.inject() returns: the shared attributes of every fault
// (kind, targets, seed, dry run) around the kind's applied state on each of
// its targets. One handle reverts all of its targets.
import type { AppliedFault, FaultStats } from '../contracts/applied-fault.js';

export interface FaultTargetInfo {
  id: string;
  name: string;
}

/** A fault applied on one target. */
export interface AppliedOn<S extends object> {
  target: FaultTargetInfo;
  applied: AppliedFault<S>;
}

/**
 * The fault on all of its targets: reverted in the reverse order of apply,
 * every revert tried; counters summed over the targets (per target in
 * `byTarget()`).
 */
export class AppliedTargets<S extends object> implements AppliedFault<S> {
  readonly parts: AppliedOn<S>[] = [];

  add(target: FaultTargetInfo, applied: AppliedFault<S>): void {
    this.parts.push({ target, applied });
  }

  async revert(): Promise<void> {
    const errors: unknown[] = [];
    for (const p of [...this.parts].reverse()) {
      try {
        await p.applied.revert();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length) throw new AggregateError(errors, `${errors.length} target(s) failed to revert`);
  }

  stats(): S {
    const sum: Record<string, number> = {};
    for (const p of this.parts) {
      for (const [k, v] of Object.entries(p.applied.stats())) if (typeof v === 'number') sum[k] = (sum[k] ?? 0) + v;
    }
    return sum as S;
  }
}

export interface FaultOptions {
  /** Nothing was applied: the spec was validated and the targets chosen as for real. */
  dryRun?: boolean;
  /** Applies the fault to more of its chosen targets (a gradual rollout); absent when all are applied. */
  widen?: (count: number) => Promise<void>;
  /** Every chosen target, in rollout order (what `targets` reaches once fully widened). */
  chosen?: FaultTargetInfo[];
  /** The kind's matched(): how many things its stats say the fault reached. */
  matched?: (stats: never) => number;
  /** What matched() counts, in words (the kind's matchedWhat). */
  matchedWhat?: string;
}

/** `S`: the kind's stats interface (`NetworkLossStats`, ...), so `stats().ingressDropped` is type-checked. */
export class ActiveFault<S extends object = FaultStats> implements AsyncDisposable {
  private reverting?: Promise<void>;
  private lastStats = {} as S;
  private lastByTarget: Record<string, S> = {};
  /** performance.now() when the fault came into force, and when it was reverted. */
  readonly appliedAt: number;
  revertedAt?: number;
  readonly dryRun: boolean;
  /** Every target chosen for the fault, in rollout order; `targets` is the applied prefix. */
  readonly chosen: readonly FaultTargetInfo[];

  constructor(
    readonly id: string,
    readonly kind: string,
    private readonly on: AppliedTargets<S>,
    readonly seed: number,
    readonly params: Readonly<Record<string, unknown>>,
    private readonly onReverted: () => void,
    private readonly options: FaultOptions = {},
  ) {
    this.appliedAt = performance.now();
    this.dryRun = options.dryRun ?? false;
    this.chosen = options.chosen ?? this.targets;
  }

  /** The containers the fault is applied to (in dry run: would be). */
  get targets(): FaultTargetInfo[] {
    return this.on.parts.map((p) => p.target);
  }

  /** The first target (the only one for a single-target fault). */
  get target(): FaultTargetInfo {
    return (this.on.parts[0]?.target ?? this.chosen[0]) as FaultTargetInfo;
  }

  get active(): boolean {
    return this.reverting === undefined;
  }

  /**
   * Applies the fault to the first `count` of its chosen targets (gradual
   * rollout). All or nothing per call: a failure reverts what this call applied.
   */
  async widen(count: number): Promise<void> {
    if (!this.active) throw new Error(`${this}: widen() after revert`);
    if (this.options.widen) await this.options.widen(count);
  }

  /** Undo the fault on every target. Idempotent; safe when a target container is gone. */
  revert(): Promise<void> {
    this.reverting ??= (async () => {
      try {
        this.lastStats = this.on.stats();
        this.lastByTarget = this.byTargetNow();
      } catch {
        // counters are best effort once the target is gone
      }
      try {
        await this.on.revert();
        const s = this.on.stats();
        if (Object.keys(s).length) {
          this.lastStats = s;
          this.lastByTarget = this.byTargetNow();
        }
      } finally {
        this.revertedAt = performance.now();
        this.onReverted();
      }
    })();
    return this.reverting;
  }

  /** What the kernel / data path counted, summed over the targets; after revert, the final counts. */
  stats(): S {
    if (!this.active) return { ...this.lastStats };
    return this.on.stats();
  }

  /**
   * How many things (packets, connections, processes, ...) the fault reached so
   * far, by its kind's own measure; 0: it has done nothing yet. null in a dry run.
   */
  /** What matched() counts, in words. */
  get matchedWhat(): string | undefined {
    return this.options.matchedWhat;
  }

  matched(): number | null {
    if (this.dryRun || !this.options.matched) return null;
    return (this.options.matched as (s: S) => number)(this.stats());
  }

  /** The counters of each target, by container name. */
  statsByTarget(): Record<string, S> {
    if (!this.active) return { ...this.lastByTarget };
    return this.byTargetNow();
  }

  private byTargetNow(): Record<string, S> {
    return Object.fromEntries(this.on.parts.map((p) => [p.target.name, p.applied.stats()]));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.revert();
  }

  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      kind: this.kind,
      target: this.target,
      targets: this.targets,
      seed: this.seed,
      params: this.params,
      active: this.active,
      dryRun: this.dryRun,
      stats: this.stats(),
    };
  }

  toString(): string {
    const p = Object.entries(this.params)
      .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join(' ');
    const on = this.targets.length ? this.targets.map((t) => t.name).join(', ') : (this.target?.name ?? '?');
    return `${this.dryRun ? 'dry-run ' : ''}${this.kind}(${p}) on ${on} seed=${this.seed}`;
  }
}
