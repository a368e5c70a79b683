// A gradual rollout: the faults widen to more of their chosen targets step by
// step, each step held holdMs; SLO windows are counted per step (a window
// validates a step only when it lies wholly in it; a breach belongs to the step
// in force when its window closed), and the first breach ends the widening.
import type { WindowStats } from '../steady-state/recorder.js';
import type { RolloutResult, RolloutStep } from './result.js';

export class Rollout {
  readonly steps: RolloutStep[] = [];
  private stepAt = 0;
  private stopped = false;

  constructor(
    readonly plan: { steps: (number | 'all')[]; holdMs: number },
    private readonly widen: (count: number) => Promise<string[][]>,
    private readonly now: () => number,
    private readonly log: (line: string) => void,
  ) {}

  static count(x: number | 'all'): number {
    return x === 'all' ? Number.POSITIVE_INFINITY : x;
  }

  get firstCount(): number {
    return Rollout.count(this.plan.steps[0] as number | 'all');
  }

  /** Records step 1 (the faults are already on its targets), then widens whenever a hold has passed. */
  async beforeTick(): Promise<void> {
    if (this.steps.length === 0) return this.begin(0);
    if (this.stopped || this.steps.length >= this.plan.steps.length) return;
    if (this.now() - this.stepAt >= this.plan.holdMs) await this.begin(this.steps.length);
  }

  onWindow(w: WindowStats, breached: boolean): void {
    const current = this.steps[this.steps.length - 1];
    if (!current) return;
    if (w.startMs >= current.startMs) current.windows++;
    if (breached) {
      current.breachedWindows++;
      this.stopped = true; // no wider step after a breach
    }
  }

  result(endMs: number): RolloutResult {
    const last = this.steps[this.steps.length - 1];
    if (last && last.endMs === last.startMs) last.endMs = endMs;
    const breached = this.steps.find((s) => s.breachedWindows > 0);
    return {
      holdMs: this.plan.holdMs,
      steps: this.steps,
      reached: this.steps.length,
      reachedStep: last?.step ?? (this.plan.steps[0] as number | 'all'),
      breachedAt: breached?.step ?? null,
    };
  }

  private async begin(k: number): Promise<void> {
    const value = this.plan.steps[k] as number | 'all';
    const targets = k === 0 ? await this.widen(this.firstCount) : await this.widen(Rollout.count(value));
    const now = this.now();
    const prev = this.steps[this.steps.length - 1];
    if (prev) prev.endMs = now;
    this.steps.push({ step: value, targets, startMs: now, endMs: now, windows: 0, breachedWindows: 0 });
    this.stepAt = now;
    this.log(`rollout step ${k + 1}/${this.plan.steps.length} (${value}): ${targets.map((t) => t.join('+')).join('; ')}`);
  }
}
