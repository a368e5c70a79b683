// A test that times out in the middle of an experiment: the experiment reverts
// its faults, stops its traffic, and what it measured reaches the report.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDemoSystem, type DemoSystem } from '../../examples/demo-system.js';

let demo: DemoSystem;
beforeAll(async () => {
  demo = await startDemoSystem();
});
afterAll(() => demo?.stop());

it('reverts, stops and reports when the test times out mid-experiment', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'vc-exp-')), 'report.json');
  await new Promise<void>((resolve) =>
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
      {
        env: { ...process.env, VC_FIXTURE: 'experiment-timeout.fixture.ts', VC_TARGET: demo.api.getId(), VC_URL: demo.url },
        timeout: 60_000,
      },
      () => resolve(),
    ),
  );
  const report = JSON.parse(readFileSync(out, 'utf8'));
  type R = {
    title: string;
    status: string;
    duration: number;
    failureMessages: string[];
    meta: { vitestChaos?: { experiments: Record<string, unknown>[] } };
  };
  const [timedOut, afterwards] = report.testResults[0].assertionResults as R[];
  expect(timedOut?.status).toBe('failed');
  expect(timedOut?.duration).toBeLessThan(5000);
  const result = timedOut?.meta.vitestChaos?.experiments[0] as {
    verdict: string;
    error: string;
    phases: { baseline: { requests: number } };
    faults: { revertedAtMs: number | null }[];
  };
  expect(result.verdict).toBe('aborted');
  expect(result.error).toBe('the test was cancelled or timed out');
  expect(result.phases.baseline.requests).toBeGreaterThan(10); // what was measured so far is kept
  expect(result.faults[0]!.revertedAtMs).not.toBeNull();
  expect([afterwards?.status, afterwards?.failureMessages]).toEqual(['passed', []]);
});
