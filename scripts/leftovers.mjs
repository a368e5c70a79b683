// Containers our tests started whose run has ended: they should not exist.
// (Containers of runs still alive, e.g. a developer's in another shell, are not ours to judge.)
import { execFileSync } from 'node:child_process';

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
process.exit(left.length ? 1 : 0);
