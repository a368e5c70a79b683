// Containers our tests started whose run has ended: they should not exist; nor journal
// records of processes that have ended (a test that kills an injecting process reaps after
// it: a record left waits for the next run's reaper, which may be a long time coming).
// (Containers and records of runs still alive, e.g. a developer's in another shell, are not ours to judge.)
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const out = execFileSync(
  'docker',
  ['ps', '-a', '--filter', 'label=vitest-chaos.test', '--format', '{{.ID}} {{.Label "vitest-chaos.run"}} {{.Names}}'],
  { encoding: 'utf8' },
);
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const left = out
  .split('\n')
  .filter(Boolean)
  .map((l) => l.split(' '))
  .filter(([, run]) => !(Number(run) > 0 && alive(Number(run))));
for (const [id, run, name] of left) console.error(`[test] left behind: container ${name} (${id}) of run ${run || '?'}`);

const journal = process.env.VITEST_CHAOS_JOURNAL_DIR ?? '/var/lib/vitest-chaos/journal';
let records = [];
try {
  records = readdirSync(journal).filter((f) => f.endsWith('.json'));
} catch {
  // no journal: nothing was ever recorded here
}
const stale = [];
for (const f of records) {
  try {
    const r = JSON.parse(readFileSync(join(journal, f), 'utf8'));
    if (!alive(Number(r.pid))) stale.push(r);
  } catch {
    stale.push({ id: f, description: 'unreadable', pid: '?' });
  }
}
for (const r of stale) console.error(`[test] left behind: journal record ${r.id} (${r.description}) of process ${r.pid}, which has ended`);
process.exit(left.length || stale.length ? 1 : 0);
