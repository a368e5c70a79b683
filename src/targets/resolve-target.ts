// A container (a Testcontainers StartedTestContainer or an id) -> what the
// kernel layer needs: its cgroup v2 directory and id, its addresses, its gateway.
import Docker from 'dockerode';
import { readFileSync } from 'node:fs';
import { cgroupOfPid, type ProcessCgroup } from './cgroup-v2.js';

/** Anything with a container id: a StartedTestContainer, or a plain id or name. */
export type ContainerRef = string | { getId(): string };

export interface TargetNetwork {
  name: string;
  ipv4: string;
  gateway: string;
}

export interface ResolvedTarget {
  id: string;
  name: string;
  pid: number;
  cgroup: ProcessCgroup;
  networks: TargetNetwork[];
  labels: Record<string, string>;
}

export class TargetError extends Error {
  override name = 'TargetError';
}

export function containerIdOf(ref: ContainerRef): string {
  if (typeof ref === 'string') return ref;
  if (ref && typeof (ref as { getId?: unknown }).getId === 'function') return ref.getId();
  throw new TargetError('expected a StartedTestContainer or a container id');
}

/**
 * Resolves containers through the Docker engine, caching by container id. A
 * cache entry is reused only while its pid still lives in the same cgroup, so a
 * restarted container is looked up again.
 */
export class TargetResolver {
  private readonly cache = new Map<string, ResolvedTarget>();

  constructor(readonly docker: Docker = new Docker()) {}

  async resolve(ref: ContainerRef): Promise<ResolvedTarget> {
    const id = containerIdOf(ref);
    const hit = this.cache.get(id);
    if (hit && stillCurrent(hit)) return hit;
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(id).inspect();
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404) throw new TargetError(`no container '${id}' exists`);
      throw new TargetError(`could not inspect container '${id}': ${(err as Error).message}`);
    }
    if (!info.State.Running || !info.State.Pid) {
      throw new TargetError(`container '${id}' is not running (state: ${info.State.Status})`);
    }
    if (info.State.Paused) throw new TargetError(`container '${id}' is paused`);
    const cgroup = cgroupOfPid(info.State.Pid);
    if (cgroup.relative === '/' || cgroup.relative === cgroupOfPid(process.pid).relative) {
      throw new TargetError(`container '${id}' shares the host's or this process's cgroup (${cgroup.relative})`);
    }
    const networks: TargetNetwork[] = Object.entries(info.NetworkSettings.Networks ?? {})
      .filter(([, n]) => n.IPAddress)
      .map(([name, n]) => ({ name, ipv4: n.IPAddress, gateway: n.Gateway }));
    const target: ResolvedTarget = {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      pid: info.State.Pid,
      cgroup,
      networks,
      labels: info.Config.Labels ?? {},
    };
    this.cache.set(id, target);
    this.cache.set(info.Id, target);
    return target;
  }

  forget(id: string): void {
    for (const [k, v] of this.cache) if (k === id || v.id === id) this.cache.delete(k);
  }
}

function stillCurrent(t: ResolvedTarget): boolean {
  try {
    return readFileSync(`/proc/${t.pid}/cgroup`, 'utf8').includes(`0::${t.cgroup.relative}\n`);
  } catch {
    return false;
  }
}
