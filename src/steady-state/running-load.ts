// Steady traffic outside an experiment: started now, recorded in the same
// bounded windows experiments use, stopped by the caller.
import { LoadGenerator, type LoadOptions, type LoadTotals } from './load-generator.js';
import { Recorder, type WindowStats } from './recorder.js';

export interface RunningLoad {
  recorder: Recorder;
  /** The last `ms` of traffic (default 1000). */
  window(ms?: number): WindowStats;
  /** Everything since the start. */
  summary(): WindowStats;
  stop(): Promise<LoadTotals>;
}

export function startLoad(opts: LoadOptions & { windowMs?: number }): RunningLoad {
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
