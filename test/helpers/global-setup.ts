// Removes containers our tests started, before (a killed earlier run) and after.
import Docker from 'dockerode';
import { TEST_LABEL } from './containers.js';

async function removeOurs(): Promise<number> {
  const docker = new Docker();
  try {
    await docker.ping();
  } catch {
    return 0; // no engine: the tests that need one are skipped by the preflight
  }
  const list = await docker.listContainers({ all: true, filters: { label: [TEST_LABEL] } });
  await Promise.allSettled(list.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  return list.length;
}

export async function setup(): Promise<() => Promise<void>> {
  const n = await removeOurs();
  if (n) console.log(`vitest-chaos tests: removed ${n} container(s) left by an earlier run`);
  return async () => {
    await removeOurs();
  };
}
