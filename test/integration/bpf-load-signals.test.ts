import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const fixture = resolve(import.meta.dirname, '../fixtures/load-all-objects.mts');

describe('loading the BPF objects', () => {
  // The verifier gives up with EAGAIN when a signal is pending; a CPU profiler sends
  // SIGPROF to the main thread every 20 us here, so an unguarded load failed every time.
  it('works in a process under a CPU profiler (node --cpu-prof: SIGPROF every 20 us)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vc-cpuprof-'));
    try {
      const { stdout } = await run(
        process.execPath,
        ['--import', 'tsx', '--cpu-prof', '--cpu-prof-interval', '20', '--cpu-prof-dir', dir, fixture],
        { timeout: 60_000 },
      );
      expect(stdout).toContain('loaded 8 objects');
      // The profiler really ran (and wrote its profiles, one per thread: tsx's loader has one): the signals were there.
      expect(readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).length).toBeGreaterThanOrEqual(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
