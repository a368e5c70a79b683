import type { StartedTestContainer } from 'testcontainers';
import { TargetResolver } from '../../src/targets/resolve-target.js';

const resolver = new TargetResolver();

export async function cgroupDirOf(c: StartedTestContainer): Promise<string> {
  return (await resolver.resolve(c)).cgroup.directory;
}

export async function gatewayOf(c: StartedTestContainer): Promise<string> {
  const t = await resolver.resolve(c);
  const gw = t.networks[0]?.gateway;
  if (!gw) throw new Error(`${t.name} has no gateway`);
  return gw;
}
