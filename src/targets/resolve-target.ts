// A container (a Testcontainers StartedTestContainer or an id) -> what the
// kernel layer needs: its cgroup v2 directory and id, its addresses, its gateway.
import Docker from 'dockerode';
import { readFileSync, statSync } from 'node:fs';
import { cgroupOfPid, type ProcessCgroup } from './cgroup-v2.js';

/** Anything with a container id: a StartedTestContainer, or a plain id or name. */
export type ContainerRef = string | { getId(): string };

export interface TargetNetwork {
  name: string;
  ipv4: string;
  gateway: string;
  /** On a network with IPv6 enabled: the container's global IPv6 address and its gateway. */
  ipv6?: string;
  gateway6?: string;
}

/** What Docker says the container is doing. */
export type TargetState = 'running' | 'paused' | 'stopped';

export interface ResolvedTarget {
  id: string;
  name: string;
  /** The container's pid 1 as the host sees it; 0 when stopped. */
  pid: number;
  /** Its cgroup v2 directory and id; empty (id 0n) when stopped. */
  cgroup: ProcessCgroup;
  /** When it was resolved (a fault that changes the state inspects it again). */
  state: TargetState;
  networks: TargetNetwork[];
  labels: Record<string, string>;
}

export class TargetError extends Error {
  override name = 'TargetError';
}

/**
 * What Docker takes as a container id or name. Anything else never reaches the
 * engine: a reference with "/", "." or ".." in the request path made the engine
 * answer with a redirect that the Docker client followed to a host named
 * "containers", an uncaught exception in the test process (found by the spec fuzz).
 */
export const CONTAINER_REF = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;

export function containerIdOf(ref: ContainerRef): string {
  if (typeof ref === 'string') return ref;
  if (ref && typeof (ref as { getId?: unknown }).getId === 'function') return ref.getId();
  throw new TargetError('expected a StartedTestContainer or a container id');
}

/**
 * Resolves containers through the Docker engine, caching by container id. A
 * cache entry is reused only while its pid still lives in the same cgroup
 * directory (same inode), so a stopped, restarted or re-created container is
 * looked up again.
 */
export class TargetResolver {
  private readonly cache = new Map<string, ResolvedTarget>();

  constructor(readonly docker: Docker = new Docker()) {}

  /**
   * accept: the states the caller can work with (default: running only); a
   * caller that accepts more always gets a fresh look, never the cache.
   */
  async resolve(ref: ContainerRef, accept: readonly TargetState[] = ['running']): Promise<ResolvedTarget> {
    const id = containerIdOf(ref);
    if (!CONTAINER_REF.test(id)) throw new TargetError(`'${id.slice(0, 80)}' is not a container id or name (letters, digits, _ . -)`);
    const plain = accept.length === 1 && accept[0] === 'running';
    const hit = this.cache.get(id);
    if (plain && hit && stillCurrent(hit)) return hit;
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(id).inspect();
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404) throw new TargetError(`no container '${id}' exists`);
      throw new TargetError(`could not inspect container '${id}': ${(err as Error).message}`);
    }
    const labels = info.Config.Labels ?? {};
    const name = info.Name.replace(/^\//, '');
    if (!info.State.Running || !info.State.Pid) {
      if (!accept.includes('stopped')) {
        throw new TargetError(`container '${id}' is not running (state: ${info.State.Status})`);
      }
      return { id: info.Id, name, pid: 0, cgroup: { relative: '', directory: '', id: 0n }, state: 'stopped', networks: [], labels };
    }
    if (info.State.Paused && !accept.includes('paused')) throw new TargetError(`container '${id}' is paused`);
    const cgroup = cgroupOfPid(info.State.Pid);
    if (cgroup.relative === '/' || cgroup.relative === cgroupOfPid(process.pid).relative) {
      throw new TargetError(`container '${id}' shares the host's or this process's cgroup (${cgroup.relative})`);
    }
    const networks: TargetNetwork[] = Object.entries(info.NetworkSettings.Networks ?? {})
      .filter(([, n]) => n.IPAddress)
      .map(([name, n]) => ({
        name,
        ipv4: n.IPAddress,
        gateway: n.Gateway,
        ...(n.GlobalIPv6Address ? { ipv6: n.GlobalIPv6Address } : {}),
        ...(n.IPv6Gateway ? { gateway6: n.IPv6Gateway } : {}),
      }));
    const target: ResolvedTarget = {
      id: info.Id,
      name,
      pid: info.State.Pid,
      cgroup,
      state: info.State.Paused ? 'paused' : 'running',
      networks,
      labels,
    };
    if (target.state === 'running') {
      this.cache.set(id, target);
      this.cache.set(info.Id, target);
    }
    return target;
  }

  forget(id: string): void {
    for (const [k, v] of this.cache) if (k === id || v.id === id) this.cache.delete(k);
  }
}

function stillCurrent(t: ResolvedTarget): boolean {
  try {
    if (!readFileSync(`/proc/${t.pid}/cgroup`, 'utf8').includes(`0::${t.cgroup.relative}\n`)) return false;
    // A restarted container gets a new cgroup directory at the same path (and
    // so a new id); its new processes may even reuse the old pid.
    return statSync(t.cgroup.directory, { bigint: true }).ino === t.cgroup.id;
  } catch {
    return false;
  }
}
