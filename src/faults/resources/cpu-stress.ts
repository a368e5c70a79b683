// cpu-stress: `workers` busy processes inside the target's cgroups, each busy
// `loadPercent` of every 100 ms. They share the target's CPU share and quota,
// so the target's own work slows down while other containers keep theirs.
import { z } from 'zod';
import type { FaultKind } from '../fault-kind.js';
import { startInTarget } from '../../targets/target-processes.js';

const WORKERS = 'an integer number of busy processes from 1 to 64';
const LOAD = 'a percentage of each 100 ms that a worker is busy, from 1 to 100';

const schema = z.strictObject({
  /** Busy processes started in the target's cgroups, 1-64. Default 1. */
  workers: z.number({ error: WORKERS }).int({ error: WORKERS }).min(1, { error: WORKERS }).max(64, { error: WORKERS }).default(1),
  /** Share of every 100 ms each worker is busy, 1-100. Default 100. */
  loadPercent: z.number({ error: LOAD }).min(1, { error: LOAD }).max(100, { error: LOAD }).default(100),
});

export type CpuStressParams = z.input<typeof schema>;

export interface CpuStressStats {
  workers: number;
  /** Workers alive now (0 after revert). */
  workersRunning: number;
  /** CPU time the workers used, in ms. */
  burnCpuMs: number;
  /** CPUs the workers used on average since the fault started. */
  burnCpus: number;
}

// Busy for the first `load`% of each 100 ms period, anchored to the period's start: a
// worker woken late (the machine is busy) is busy for less, so it is runnable (on a CPU
// or waiting for one) `load`% of the time. After a long stall the schedule restarts
// rather than catching up. At 100% it still yields each period, so that a closed stdin
// (our process died) is noticed.
const BURNER = `
const period = 100, busy = (period * Number(process.argv[1])) / 100;
let start = 0;
function tick() {
  const end = start + busy;
  while (Date.now() < end);
  start += period;
  if (start + period < Date.now()) start = Date.now();
  setTimeout(tick, Math.max(0, start - Date.now()));
}
go.then(() => { start = Date.now(); tick(); });
`;

export const cpuStress: FaultKind<'cpu-stress', typeof schema, CpuStressStats> = {
  kind: 'cpu-stress',
  matched: (s) => s.workers,
  matchedWhat: 'stress workers started in the target',
  schema,
  async apply(p, target, ctx) {
    const procs = await startInTarget(target, ctx, {
      description: `cpu-stress ${p.workers} worker(s) at ${p.loadPercent}% in ${target.name}`,
      script: BURNER,
      argv: Array.from({ length: p.workers }, () => [String(p.loadPercent)]),
    });
    const startedAt = performance.now();
    let stoppedAt: number | undefined;
    const stats = (): CpuStressStats => {
      const cpuMs = procs.cpuTimeMs();
      const wallMs = (stoppedAt ?? performance.now()) - startedAt;
      return {
        workers: p.workers,
        workersRunning: stoppedAt === undefined ? procs.running() : 0,
        burnCpuMs: cpuMs,
        burnCpus: wallMs > 0 ? cpuMs / wallMs : 0,
      };
    };
    return {
      stats,
      async revert() {
        stoppedAt ??= performance.now();
        await procs.stop();
      },
    };
  },
};
