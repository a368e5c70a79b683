// Faults end with their test, however it ends: here a child Vitest run whose
// tests fail and time out while faults are active. Between and after them the
// kernel shows nothing attached to the target, and traffic is normal.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ipOf, startHttpServer, stopAll } from '../helpers/containers.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { cgroupDirOf } from '../helpers/target-info.js';
import { udpEchoRound } from '../helpers/udp.js';

let target: StartedTestContainer;
beforeAll(async () => {
  target = await startHttpServer('revert-on-end');
});
afterAll(() => stopAll(target));

it('reverts the faults of a test that failed and of one that timed out', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'vc-end-')), 'report.json');
  const run = new Promise<void>((resolve) => {
    execFile(
      process.execPath,
      [
        'node_modules/vitest/vitest.mjs',
        'run',
        '--config',
        'test/child-runs/vitest.config.ts',
        '--reporter=json',
        `--outputFile.json=${out}`,
      ],
      { env: { ...process.env, VC_FIXTURE: 'ends-badly.fixture.ts', VC_TARGET: target.getId() }, timeout: 60_000 },
      () => resolve(), // exits 1: its tests fail on purpose
    );
  });
  await run;
  const report = JSON.parse(readFileSync(out, 'utf8'));
  type R = { title: string; status: string; duration: number; failureMessages: string[] };
  const [failed, timedOut, afterwards] = report.testResults[0].assertionResults as R[];
  expect([failed?.title, failed?.status]).toEqual(['fails', 'failed']);
  expect(failed?.failureMessages.join(' ')).toContain('deliberate failure');
  // Vitest's JSON report keeps no timeout text; the duration shows the 300 ms limit ended it, not the 5 s sleep.
  expect([timedOut?.title, timedOut?.status]).toEqual(['times out', 'failed']);
  expect(timedOut?.duration).toBeGreaterThanOrEqual(290);
  expect(timedOut?.duration).toBeLessThan(2_000);
  expect([afterwards?.status, afterwards?.failureMessages]).toEqual(['passed', []]);
  expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
  expect((await udpEchoRound(ipOf(target), 9000, 200)).lost).toBe(0);
});
