// Removes the containers our tests start: those of this run at the end, and
// those of runs that died (their main process is gone) at the start. Runs that
// are still alive (another developer's or helper's) are left alone.
import Docker from 'dockerode';
import type { TestProject } from 'vitest/node';
import { RUN_LABEL, TEST_LABEL } from './containers.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function remove(filter: (labels: Record<string, string>) => boolean): Promise<number> {
  const docker = new Docker();
  try {
    await docker.ping();
  } catch {
    return 0; // no engine: the tests that need one are skipped by the preflight
  }
  const list = await docker.listContainers({ all: true, filters: { label: [TEST_LABEL] } });
  const ours = list.filter((c) => filter(c.Labels));
  await Promise.allSettled(ours.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  return ours.length;
}

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const run = String(process.pid);
  project.provide('testRunId', run);
  const n = await remove((l) => {
    const owner = Number(l[RUN_LABEL]);
    return !Number.isInteger(owner) || owner <= 0 || !alive(owner);
  });
  if (n) console.log(`vitest-chaos tests: removed ${n} container(s) left by runs that died`);
  return async () => {
    await remove((l) => l[RUN_LABEL] === run);
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    testRunId: string;
  }
}
