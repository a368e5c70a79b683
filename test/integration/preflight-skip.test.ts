// A machine without the privileges: tests that inject are skipped with the
// reason and the fix, never passed. We drop CAP_BPF, CAP_NET_ADMIN and
// CAP_SYS_ADMIN from a child Vitest run (as root, so it can still write its cache).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

it('skips a test that injects when privileges are missing, saying why and what to do', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'vc-preflight-')), 'report.json');
  const caps = '-bpf,-net_admin,-sys_admin';
  const { stdout } = await promisify(execFile)(
    'setpriv',
    [
      `--bounding-set=${caps}`,
      `--inh-caps=${caps}`,
      process.execPath,
      'node_modules/vitest/vitest.mjs',
      'run',
      '--config',
      'test/child-runs/vitest.config.ts',
      '--reporter=verbose',
      '--reporter=json',
      `--outputFile.json=${out}`,
    ],
    { env: { ...process.env, VC_FIXTURE: 'needs-privileges.fixture.ts', NO_COLOR: '1', FORCE_COLOR: '0' }, timeout: 60_000 },
  );
  const report = JSON.parse(readFileSync(out, 'utf8'));
  expect(report.numPendingTests).toBe(1);
  expect(report.numPassedTests).toBe(0);
  expect(report.numFailedTests).toBe(0);
  expect(stdout).toContain('privileges: this process lacks CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN');
  expect(stdout).toContain('Fix: run the tests as root');
});
