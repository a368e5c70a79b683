// The kill switch's directory: the socket and record of a process that died
// without removing them (SIGKILL) are removed by the next process that listens
// there (and by `vitest-chaos status | stop`); a live process's stay.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { forgetDeadRecords, type ProcessRecord } from '../../src/api/control-channel.js';
import { processStartTicks } from '../../src/journal/process-start.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function plant(dir: string, pid: number, pidStart: number): void {
  const r: ProcessRecord = {
    pid,
    pidStart,
    threadId: 0,
    runPid: pid,
    journalDir: '/nonexistent',
    cwd: '/',
    startedAt: new Date(0).toISOString(),
    socket: join(dir, `${pid}-0.sock`),
  };
  writeFileSync(join(dir, `${pid}-0.json`), JSON.stringify(r));
  writeFileSync(join(dir, `${pid}-0.sock`), ''); // stands for the socket file
}

it("removes a dead process's socket and record (a dead pid, or a reused one), keeps a live one's and the rest", () => {
  const dir = mkdtempSync(join(tmpdir(), 'vc-control-'));
  dirs.push(dir);
  const dead = spawnSync('true').pid as number;
  plant(dir, dead, 123);
  plant(dir, process.ppid, 1); // a live pid, another start time: its record is a dead process's
  plant(dir, process.pid, processStartTicks(process.pid) as number);
  writeFileSync(join(dir, 'stopped'), '{}');
  writeFileSync(join(dir, `rate-${process.pid}-1.json`), '[]');

  const gone = forgetDeadRecords(dir).map((r) => r.pid);
  expect(gone.sort()).toEqual([dead, process.ppid].sort());
  expect(readdirSync(dir).sort()).toEqual(
    [`${process.pid}-0.json`, `${process.pid}-0.sock`, `rate-${process.pid}-1.json`, 'stopped'].sort(),
  );
});
