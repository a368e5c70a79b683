// Injects an experiment's steps at their times and reverts them: at a step's
// end, at an abort, at the end of the observe phase. Nothing escapes it: an
// inject still in flight when injecting stops is reverted as soon as it lands,
// and a revert that fails is kept in the fault's record, never thrown unhandled.
import type { ActiveFault } from '../faults/fault-handle.js';
import { deriveSeed } from '../contracts/seed.js';
import type { Recorder } from '../steady-state/recorder.js';
import type { ExperimentStep, Injector } from './experiment-options.js';
import type { FaultRecord } from './result.js';
import { isStep } from './validate-experiment.js';

export class FaultSchedule<S extends { seed?: number }> {
  readonly records: FaultRecord[];
  /** When the last fault was reverted (ms on the recorder's clock). */
  lastRevertMs = 0;
  /** The first inject or revert that failed, as the experiment's error. */
  error?: string;
  private readonly steps: ExperimentStep<S>[];
  private readonly active = new Map<number, ActiveFault<object>>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private open = false;
  /** Serial: each step is started `atMs` after the one before it was reverted (a step never overlaps the last). */
  private serial = false;
  /** With a rollout: how many chosen targets each fault starts on. */
  firstCount?: number;

  constructor(
    faults: (S | ExperimentStep<S>)[],
    seed: number,
    private readonly injector: Injector<S>,
    private readonly rec: Recorder,
    /** Aborted by the experiment (a breach, a cancelled test) and by the first failure here. */
    private readonly stop: AbortController,
    private readonly log: (line: string) => void,
  ) {
    this.steps = faults.map((s, i) => {
      const step: ExperimentStep<S> = isStep(s) ? s : { fault: s };
      return { ...step, fault: { ...step.fault, seed: step.fault.seed ?? deriveSeed(seed, 'fault', i) } };
    });
    this.records = this.steps.map((s) => ({
      kind: String((s.fault as { kind?: unknown }).kind),
      target: '',
      seed: s.fault.seed as number,
      params: {},
      injectedAtMs: null,
      revertedAtMs: null,
      applyMs: null,
      stats: {},
    }));
  }

  /** Every step's fault with the seed it is injected with. */
  seededFaults(): { spec: S; seed: number }[] {
    return this.steps.map((s) => ({ spec: s.fault, seed: s.fault.seed as number }));
  }

  /** Starts the steps; in parallel mode, resolves once the steps at offset 0 are in force. */
  async start(mode: 'parallel' | 'serial'): Promise<void> {
    this.open = true;
    if (mode === 'serial') {
      // One after the other: the next step is timed from this one's revert (endStep), not
      // from the start, so a slow inject or revert cannot make two steps overlap.
      this.serial = true;
      if (this.steps.length) this.at(this.steps[0]!.atMs ?? 0, 0);
      return;
    }
    const now = this.steps.map((s, i) => ((s.atMs ?? 0) === 0 ? i : -1)).filter((i) => i >= 0);
    await Promise.all(now.map((i) => this.inject(i))); // the faults at offset 0 are in force before we watch
    if (!this.injecting) return;
    this.steps.forEach((s, i) => {
      if (s.atMs) this.at(s.atMs, i);
    });
  }

  /** The faults in force now, as "kind(params) on target seed=n". */
  activeNames(): string[] {
    return [...this.active.values()].map((f) => f.toString());
  }

  /** Stops injecting and reverts what is in force now (injects in flight are reverted when they land). */
  async revertActive(): Promise<void> {
    this.open = false;
    this.timers.forEach(clearTimeout);
    await Promise.all([...this.active.keys()].map((i) => this.revert(i)));
  }

  /** revertActive(), then waits for the injects in flight and reverts them too: nothing stays in force. */
  async revertAll(): Promise<void> {
    await this.revertActive();
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
    await Promise.all([...this.active.keys()].map((i) => this.revert(i)));
  }

  private at(ms: number, i: number): void {
    this.timers.push(setTimeout(() => void this.inject(i), ms));
  }

  private get injecting(): boolean {
    return this.open && !this.stop.signal.aborted;
  }

  private inject(i: number): Promise<void> {
    if (!this.injecting) return Promise.resolve();
    const p = this.injectNow(i).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    return p;
  }

  private async injectNow(i: number): Promise<void> {
    const step = this.steps[i]!;
    const r = this.records[i]!;
    let f: ActiveFault<object>;
    const t0 = this.rec.now();
    try {
      if (this.firstCount !== undefined && !this.injector.injectOn) throw new Error('this injector cannot roll a fault out');
      f =
        this.firstCount !== undefined ? await this.injector.injectOn!(step.fault, this.firstCount) : await this.injector.inject(step.fault);
    } catch (err) {
      r.error = (err as Error).message;
      this.fail(`inject of fault ${i} (${r.kind}) failed: ${r.error}`);
      return;
    }
    r.injectedAtMs = this.rec.now();
    r.applyMs = r.injectedAtMs - t0;
    r.target = f.target.name;
    r.targets = f.targets.map((t) => t.name);
    if (f.dryRun) r.dryRun = true;
    r.params = { ...f.params };
    this.active.set(i, f);
    if (!this.injecting) {
      this.log(`${f} landed after injecting stopped: reverting it`);
      await this.revert(i);
      return;
    }
    this.log(`injected ${f}`);
    if (step.durationMs !== undefined) this.timers.push(setTimeout(() => void this.endStep(i), step.durationMs));
  }

  /** A step's duration is over: revert it; in serial mode, time the next step from now. */
  private async endStep(i: number): Promise<void> {
    await this.revert(i);
    const next = this.steps[i + 1];
    if (this.serial && next && this.injecting) this.at(next.atMs ?? 0, i + 1);
  }

  /** Widens every fault in force to `count` of its chosen targets (a rollout step); the targets in force per fault. */
  async widen(count: number): Promise<string[][]> {
    for (const [i, f] of this.active) {
      try {
        await f.widen(count);
        this.records[i]!.targets = f.targets.map((t) => t.name);
      } catch (err) {
        this.fail(`rollout to ${count} target(s) of fault ${i} (${this.records[i]!.kind}) failed: ${(err as Error).message}`);
      }
    }
    return [...this.active.values()].map((f) => f.targets.map((t) => t.name));
  }

  /** Never rejects: a failure is kept in the record and becomes the experiment's error. */
  private async revert(i: number): Promise<void> {
    const f = this.active.get(i);
    if (!f) return;
    this.active.delete(i);
    const r = this.records[i]!;
    try {
      await f.revert();
    } catch (err) {
      r.revertError = (err as Error).message;
      this.fail(`revert of fault ${i} (${r.kind}) failed: ${r.revertError}`);
    }
    r.revertedAtMs = this.rec.now();
    r.stats = f.stats() as Record<string, number>;
    try {
      const matched = f.matched();
      if (matched !== null) {
        r.matched = matched;
        r.matchedWhat = f.matchedWhat;
      }
    } catch {
      // counters are best effort once the target is gone
    }
    this.lastRevertMs = Math.max(this.lastRevertMs, r.revertedAtMs);
  }

  private fail(message: string): void {
    this.error ??= message;
    this.stop.abort();
  }
}
