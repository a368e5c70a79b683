// The handle chaos.inject() returns: the shared attributes of every fault
// (kind, target, seed) around the kind's own applied state.
import type { AppliedFault, FaultStats } from '../contracts/applied-fault.js';

export interface FaultTargetInfo {
  id: string;
  name: string;
}

/** `S`: the kind's stats interface (`NetworkLossStats`, ...), so `stats().ingressDropped` is type-checked. */
export class ActiveFault<S extends object = FaultStats> implements AsyncDisposable {
  private reverting?: Promise<void>;
  private lastStats = {} as S;
  /** performance.now() when the fault came into force, and when it was reverted. */
  readonly appliedAt: number;
  revertedAt?: number;

  constructor(
    readonly id: string,
    readonly kind: string,
    readonly target: FaultTargetInfo,
    readonly seed: number,
    readonly params: Readonly<Record<string, unknown>>,
    private readonly applied: AppliedFault<S>,
    private readonly onReverted: () => void,
  ) {
    this.appliedAt = performance.now();
  }

  get active(): boolean {
    return this.reverting === undefined;
  }

  /** Undo the fault. Idempotent; safe when the target container is gone. */
  revert(): Promise<void> {
    this.reverting ??= (async () => {
      try {
        this.lastStats = this.applied.stats();
      } catch {
        // counters are best effort once the target is gone
      }
      try {
        await this.applied.revert();
        const s = this.applied.stats();
        if (Object.keys(s).length) this.lastStats = s;
      } finally {
        this.revertedAt = performance.now();
        this.onReverted();
      }
    })();
    return this.reverting;
  }

  /** What the kernel / data path counted; after revert, the final counts. */
  stats(): S {
    if (!this.active) return { ...this.lastStats };
    return this.applied.stats();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.revert();
  }

  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      kind: this.kind,
      target: this.target,
      seed: this.seed,
      params: this.params,
      active: this.active,
      stats: this.stats(),
    };
  }

  toString(): string {
    const p = Object.entries(this.params)
      .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join(' ');
    return `${this.kind}(${p}) on ${this.target.name} seed=${this.seed}`;
  }
}
