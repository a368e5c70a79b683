// Prints Vitest's JSON reports (the host run, and the v2 guest's when it ran)
// as one plain closing line: "N passed, N failed, N skipped".
import { readFileSync } from 'node:fs';

const [file, guestFile] = process.argv.slice(2);

function counts(path) {
  const report = JSON.parse(readFileSync(path, 'utf8'));
  return {
    passed: report.numPassedTests ?? 0,
    failed: report.numFailedTests ?? 0,
    skipped: (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0),
  };
}

let host;
try {
  host = counts(file);
} catch (err) {
  console.error(`no test report at ${file}: ${err.message}`);
  process.exit(1);
}
let line = '';
if (guestFile) {
  try {
    const g = counts(guestFile);
    for (const k of ['passed', 'failed', 'skipped']) host[k] += g[k];
    line = ` (of which in the cgroup v2 guest: ${g.passed} passed, ${g.failed} failed, ${g.skipped} skipped)`;
  } catch (err) {
    line = ` (the cgroup v2 guest left no report at ${guestFile}: ${err.message})`;
  }
}
console.log(`tests: ${host.passed} passed, ${host.failed} failed, ${host.skipped} skipped${line}`);
