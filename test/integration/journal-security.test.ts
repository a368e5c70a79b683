// The journal is run as root by the next run's reaper: planted records of
// every forbidden shape are refused, reported and kept, and their effect does
// not happen; a record in a directory another user may write is not even
// read; a legitimate record beside them is still reverted; and a process of
// another uid can neither read nor write the journal.
import Docker from 'dockerode';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Journal } from '../../src/journal/journal.js';
import { processStartTicks } from '../../src/journal/process-start.js';
import { reapOnce } from '../../src/journal/reap-once.js';
import { cgroupV1Dir } from '../../src/targets/cgroup-v1.js';
import { IMAGES, sh, startClient, stopAll } from '../helpers/containers.js';

const run = promisify(execFile);
const docker = new Docker();
const PWNED = '/tmp/pwned';
const DEAD_PID = 4_000_000; // above pid_max's default: never a live process

let n = 0;
function plant(dir: string, description: string, undo: unknown[], mode = 0o600): string {
  const id = `${DEAD_PID}-${++n}-${Date.now()}`;
  const file = join(dir, `${id}.json`);
  const rec = { id, pid: DEAD_PID, pidStart: 1, createdAt: new Date().toISOString(), seq: n, description, undo };
  writeFileSync(file, JSON.stringify(rec), { mode });
  chmodSync(file, mode);
  return file;
}

/** Runs the reaper the way Chaos does before its first change: VITEST_CHAOS_JOURNAL_DIR, reapOnce, warnings. */
async function reapAt(dir: string): Promise<string[]> {
  const saved = process.env.VITEST_CHAOS_JOURNAL_DIR;
  process.env.VITEST_CHAOS_JOURNAL_DIR = dir;
  const lines: string[] = [];
  try {
    await reapOnce(
      () => new Journal(),
      (l) => lines.push(l),
    )();
  } finally {
    if (saved === undefined) delete process.env.VITEST_CHAOS_JOURNAL_DIR;
    else process.env.VITEST_CHAOS_JOURNAL_DIR = saved;
  }
  return lines;
}

const state = async (id: string) => (await docker.getContainer(id).inspect()).State;

describe('the reaper runs only what a run of ours could have journaled', () => {
  let ours: StartedTestContainer;
  let foreign: Docker.Container;
  let foreignId: string;
  let oursQuota: string;
  let foreignQuota: string;
  const dirs: string[] = [];
  const tempDir = (mode = 0o700) => {
    const d = mkdtempSync(join(tmpdir(), 'vc-sec-journal-'));
    chmodSync(d, mode);
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    rmSync(PWNED, { force: true });
    ours = await startClient('sec-ours');
    // A container no run of ours started: no Testcontainers label, no run label.
    foreign = await docker.createContainer({ Image: IMAGES.client, name: `vc-sec-foreign-${process.pid}`, Labels: {} });
    await foreign.start();
    foreignId = (await foreign.inspect()).Id;
    oursQuota = join(cgroupV1Dir((await state(ours.getId())).Pid, 'cpu'), 'cpu.cfs_quota_us');
    foreignQuota = join(cgroupV1Dir((await state(foreignId)).Pid, 'cpu'), 'cpu.cfs_quota_us');
  });
  afterAll(async () => {
    if (oursQuota && existsSync(oursQuota)) writeFileSync(oursQuota, '-1');
    await foreign?.remove({ force: true }).catch(() => undefined);
    await stopAll(ours);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    rmSync(PWNED, { force: true });
  });

  it('refuses every forbidden shape, keeps and reports it, and runs the legitimate record beside them', async () => {
    const dir = tempDir();
    await docker.getContainer(ours.getId()).pause();
    await foreign.pause();
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' }); // a live root process that is not ours
    const sleeperStart = processStartTicks(sleeper.pid!)!;
    try {
      const bad = {
        exec: plant(dir, 'exec', [{ type: 'exec', argv: ['touch', PWNED] }]),
        writeFile: plant(dir, 'write-file', [{ type: 'write-file', path: PWNED, content: 'x' }]),
        outsideMounts: plant(dir, 'cgroup-write outside the cgroup mounts', [
          { type: 'cgroup-write', path: '/tmp/pwned/cpu.max', content: 'max 100000' },
        ]),
        notAContainer: plant(dir, 'cgroup-write to the root cgroup', [
          { type: 'cgroup-write', path: '/sys/fs/cgroup/cpu/cpu.cfs_quota_us', content: '1000' },
        ]),
        dotdot: plant(dir, 'cgroup-write with ..', [
          { type: 'cgroup-write', path: `${oursQuota.replace(/\/[^/]+$/, '')}/../../cpu.cfs_quota_us`, content: '1000' },
        ]),
        otherFile: plant(dir, 'cgroup-write to another file', [
          { type: 'cgroup-write', path: oursQuota.replace('cpu.cfs_quota_us', 'cgroup.procs'), content: String(process.pid) },
        ]),
        foreignCgroup: plant(dir, 'cgroup-write to a foreign container', [{ type: 'cgroup-write', path: foreignQuota, content: '1000' }]),
        dockerExec: plant(dir, 'docker-exec', [{ type: 'docker-exec', containerId: foreignId, cmd: ['touch', PWNED] }]),
        foreignUnpause: plant(dir, 'docker-unpause of a foreign container', [{ type: 'docker-unpause', containerId: foreignId }]),
        foreignRm: plant(dir, 'disk-fill-remove in a foreign container', [
          { type: 'disk-fill-remove', containerId: foreignId, dir: '/etc', file: 'vitest-chaos-disk-fill-1-1' },
        ]),
        otherName: plant(dir, 'disk-fill-remove of another file', [
          { type: 'disk-fill-remove', containerId: ours.getId(), dir: '/etc', file: 'passwd' },
        ]),
        tcArgv: plant(dir, 'tc with another handle', [
          { type: 'tc-qdisc-del', containerId: ours.getId(), netns: null, device: 'docker0', handle: '1:' },
        ]),
        killNotOurs: plant(dir, 'kill a process we did not start', [{ type: 'kill', pids: [{ pid: sleeper.pid!, start: sleeperStart }] }]),
        worldWritable: plant(dir, 'a record anyone could have written', [{ type: 'docker-unpause', containerId: ours.getId() }], 0o666),
        garbage: (() => {
          const f = join(dir, 'junk.json');
          writeFileSync(f, '{"undo": "rm -rf /"}', { mode: 0o600 });
          return f;
        })(),
      };
      // Beside them, what a run of ours writes: it is reverted.
      writeFileSync(oursQuota, '50000');
      const good = plant(dir, 'container-pause on sec-ours + cpu-throttle', [
        { type: 'cgroup-write', path: oursQuota, content: '-1' },
        { type: 'docker-unpause', containerId: ours.getId() },
      ]);
      const foreignQuotaBefore = readFileSync(foreignQuota, 'utf8').trim();

      const lines = await reapAt(dir);

      const refused = lines.filter((l) => l.includes('refused the journal record'));
      for (const file of Object.values(bad)) {
        const line = refused.find((l) => l.includes(file));
        expect(line, `no refusal reported for ${file}:\n${lines.join('\n')}`).toBeDefined();
        expect(line).toContain('NOT run and is kept');
        expect(existsSync(file)).toBe(true); // kept
      }
      expect(refused).toHaveLength(Object.keys(bad).length);
      const why = (k: keyof typeof bad) => refused.find((l) => l.includes(bad[k]))!;
      expect(why('exec')).toMatch(/undo\[0\]\.type/);
      expect(why('outsideMounts')).toContain('not under a cgroup mount');
      expect(why('notAContainer')).toContain("not a container's cgroup directory");
      expect(why('dotdot')).toContain('normalised');
      expect(why('otherFile')).toContain('not "cgroup.procs"');
      expect(why('foreignCgroup')).toContain('no run of ours started it');
      expect(why('foreignUnpause')).toContain('no run of ours started it');
      expect(why('foreignRm')).toContain('no run of ours started it');
      expect(why('otherName')).toContain('disk-fill file name');
      expect(why('tcArgv')).toContain('our qdisc handle 7c5d:');
      expect(why('killNotOurs')).toContain('is not one vitest-chaos started');
      expect(why('worldWritable')).toContain(`chmod 600 ${bad.worldWritable}`);
      expect(why('garbage')).toContain('not a journal record');

      // Their effects did not happen.
      expect(existsSync(PWNED)).toBe(false);
      expect((await sh(ours, `test -e ${PWNED}; echo $?`)).output.trim()).toBe('1');
      expect(readFileSync(foreignQuota, 'utf8').trim()).toBe(foreignQuotaBefore);
      expect((await state(foreignId)).Paused).toBe(true);
      expect(processStartTicks(sleeper.pid!)).toBe(sleeperStart);
      // The legitimate record ran and is gone.
      expect(lines.filter((l) => l.includes('reverted what a dead run left'))).toEqual([
        expect.stringContaining('container-pause on sec-ours'),
      ]);
      expect(existsSync(good)).toBe(false);
      expect((await state(ours.getId())).Paused).toBe(false);
      expect(readFileSync(oursQuota, 'utf8').trim()).toBe('-1');
    } finally {
      sleeper.kill('SIGKILL');
      await docker
        .getContainer(ours.getId())
        .unpause()
        .catch(() => undefined);
      await foreign.unpause().catch(() => undefined);
    }
    await foreign.unpause().catch(() => undefined);
  });

  it('reads nothing in a journal directory that others may write or that another uid owns, and says how to fix it', async () => {
    await docker.getContainer(ours.getId()).pause();
    try {
      const open = tempDir(0o777);
      const rec = plant(open, 'container-pause on sec-ours', [{ type: 'docker-unpause', containerId: ours.getId() }]);
      const lines = await reapAt(open);
      expect(lines).toEqual([expect.stringContaining(`is writable by group and others (mode 0777): run \`chmod 700 ${open}\``)]);
      expect(lines[0]).toContain('nothing in it was run');
      expect((await state(ours.getId())).Paused).toBe(true);
      expect(existsSync(rec)).toBe(true);
      // Our own process refuses to journal there too: its records would never be run.
      expect(() => new Journal(open).record('x', [])).toThrow(`chmod 700 ${open}`);

      const theirs = tempDir(0o700);
      plant(theirs, 'container-pause on sec-ours', [{ type: 'docker-unpause', containerId: ours.getId() }]);
      await run('chown', ['65534', theirs]);
      const theirLines = await reapAt(theirs);
      expect(theirLines).toEqual([
        expect.stringContaining(
          `belongs to uid 65534, not to uid 0 that runs vitest-chaos: run \`chown 0 ${theirs} && chmod 700 ${theirs}\``,
        ),
      ]);
      expect((await state(ours.getId())).Paused).toBe(true);

      // The fix the message gives works: the same record then runs.
      chmodSync(open, 0o700);
      expect(await reapAt(open)).toEqual([expect.stringContaining('reverted what a dead run left: container-pause on sec-ours')]);
      expect((await state(ours.getId())).Paused).toBe(false);
    } finally {
      await docker
        .getContainer(ours.getId())
        .unpause()
        .catch(() => undefined);
    }
  });

  it('a process of another uid can neither list, read nor write the journal', async () => {
    const dir = join(tempDir(), 'journal');
    const j = new Journal(dir);
    const e = j.record('container-pause on sec-ours', [{ type: 'docker-unpause', containerId: ours.getId() }]);
    const file = join(dir, `${e.id}.json`);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const asNobody = async (...argv: string[]) => {
      try {
        await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...argv]);
        return 'succeeded';
      } catch (err) {
        return String((err as { stderr?: string }).stderr);
      }
    };
    expect(await asNobody('ls', dir)).toContain('Permission denied');
    expect(await asNobody('cat', file)).toContain('Permission denied');
    expect(await asNobody('touch', join(dir, '1-1-1.json'))).toContain('Permission denied');
    expect(await asNobody('rm', '-f', file)).toContain('Permission denied');
    expect(readdirSync(dir)).toEqual([`${e.id}.json`]);
    j.forget(e);
  });
});
