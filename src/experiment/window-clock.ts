// The experiment's clock: the recorder, its bucket and window sizes, and the
// signal that stops every wait at once (a breach, an error, a cancelled test).
import { setTimeout as sleep } from 'node:timers/promises';
import { Recorder } from '../steady-state/recorder.js';

export class WindowClock {
  readonly rec: Recorder;
  readonly bucketMs: number;

  constructor(
    readonly windowMs: number,
    readonly signal: AbortSignal,
  ) {
    this.bucketMs = Math.max(10, Math.min(100, Math.round(windowMs / 10)));
    this.rec = new Recorder(this.bucketMs, windowMs * 2);
  }

  now(): number {
    return this.rec.now();
  }

  /** Sleeps to just past the next bucket boundary, so a window is judged as soon as it closes. */
  nextTick(): Promise<void> {
    return this.sleep(this.bucketMs - (this.rec.now() % this.bucketMs) + 1);
  }

  /** Sleeps, or less when the signal aborts. */
  sleep(ms: number): Promise<void> {
    return sleep(ms, undefined, { signal: this.signal }).catch(() => undefined);
  }
}
