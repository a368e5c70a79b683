// Run by test/integration/worker-orphan-sigkill.test.ts: holds a container-pause
// and a cpu-throttle on VC_TARGET, writes this worker's pid to VC_READY_FILE,
// and waits far longer than the parent test does: only the parent's death (a
// SIGKILL of the Vitest main process) should end it.
import { writeFileSync } from 'node:fs';
import { it } from 'vitest';
import { chaos } from 'vitest-chaos';

it('holds faults until the run is killed', { timeout: 120_000 }, async () => {
  const target = process.env.VC_TARGET as string;
  await chaos.inject({ kind: 'cpu-throttle', target, cpus: 0.2 });
  await chaos.inject({ kind: 'container-pause', target });
  writeFileSync(process.env.VC_READY_FILE as string, String(process.pid));
  await new Promise((r) => setTimeout(r, 100_000));
});
