// What the kernel saw of an experiment's targets, phase by phase: observers on
// every target of its faults, started before the baseline, a mark at each phase's
// start, stopped at the end. An observer that cannot start leaves the experiment
// running and says why in the result (kernelError).
import type { KernelObservation, KernelObserver, ObserverMark } from '../observe/kernel-observer.js';
import type { ContainerRef } from '../targets/resolve-target.js';
import type { Injector } from './experiment-options.js';
import type { Phase } from './result.js';

/** result.kernel: per phase, per target name (the container's name without '/'). */
export type KernelPhases = Partial<Record<Phase, Record<string, KernelObservation>>>;

export class KernelWatch {
  private current?: { phase: Phase; marks: ObserverMark[] };
  private readonly phases: KernelPhases = {};

  private constructor(
    private readonly observers: KernelObserver[],
    readonly error?: string,
  ) {}

  static async start<S>(
    injector: Injector<S>,
    faults: { spec: S; seed: number }[],
    also: readonly ContainerRef[] = [],
  ): Promise<KernelWatch> {
    if (!injector.observeTargets) return new KernelWatch([]);
    try {
      return new KernelWatch(await injector.observeTargets(faults, also));
    } catch (err) {
      return new KernelWatch([], `kernel observers did not start: ${(err as Error).message}`);
    }
  }

  /** Ends the phase in course (if any) and starts `phase`. */
  async phase(phase: Phase): Promise<void> {
    await this.close();
    if (this.observers.length === 0) return;
    this.current = { phase, marks: this.observers.map((o) => o.mark()) };
  }

  /** Ends the phase in course, stops the observers; what they saw, by phase and target. */
  async finish(): Promise<{ kernel?: KernelPhases; kernelError?: string }> {
    await this.close();
    for (const o of this.observers) o.stop();
    return {
      ...(this.observers.length ? { kernel: this.phases } : {}),
      ...(this.error ? { kernelError: this.error } : {}),
    };
  }

  private async close(): Promise<void> {
    const cur = this.current;
    if (!cur) return;
    this.current = undefined;
    // A target restarted during the phase: its new cgroup is counted before the phase closes.
    await Promise.all(this.observers.map((o) => o.follow()));
    const out: Record<string, KernelObservation> = {};
    this.observers.forEach((o, i) => {
      out[o.name] = o.snapshot(cur.marks[i]);
    });
    this.phases[cur.phase] = out;
  }
}
