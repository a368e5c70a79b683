import { execFileSync } from 'node:child_process';
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

/** The ports this process listens on at `address` (where the data path's proxies and resolvers go), TCP or UDP. */
export function listeningPorts(address: string, proto: 'tcp' | 'udp' = 'tcp'): number[] {
  const out = execFileSync('ss', [proto === 'tcp' ? '-Hltnp' : '-Hlunp', 'src', address], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes(`pid=${process.pid},`))
    .map((l) => Number(l.trim().split(/\s+/)[3]?.split(':').pop()));
}
