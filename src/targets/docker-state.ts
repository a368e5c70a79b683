// Reading a container's state from Docker, tolerating one that is gone.
import type Docker from 'dockerode';
import { setTimeout as sleep } from 'node:timers/promises';

/** The container's inspect data, or null when it no longer exists. */
export async function inspectOrNull(docker: Docker, id: string): Promise<Docker.ContainerInspectInfo | null> {
  try {
    return await docker.getContainer(id).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}

/** Polls until check() is true (returns true) or timeoutMs passed (returns false). */
export async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (performance.now() >= end) return false;
    await sleep(stepMs);
  }
}

/** Docker's timestamps have nanoseconds; ms since the epoch, or NaN for the zero time. */
export function dockerTimeMs(t: string | undefined): number {
  if (!t || t.startsWith('0001-')) return Number.NaN;
  return Date.parse(t);
}

/** Runs fn; Docker statuses in okStatus (304 not modified, 404 gone, 409 conflict) count as done. */
export async function ignoreStatus(fn: () => Promise<unknown>, okStatus: number[]): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status === undefined || !okStatus.includes(status)) throw err;
  }
}

/**
 * A container's published ports: its HostConfig.PortBindings, with every binding that asked
 * Docker for an ephemeral host port (HostPort "" or "0") given the port it got this time, as
 * NetworkSettings.Ports shows it. `pinned`: how many bindings were ephemeral and are now fixed.
 */
export function pinnedPortBindings(info: Docker.ContainerInspectInfo): { bindings: Docker.PortMap; pinned: number } {
  const current = (info.NetworkSettings?.Ports ?? {}) as Record<string, { HostIp: string; HostPort: string }[] | null>;
  const bindings: Docker.PortMap = {};
  let pinned = 0;
  for (const [key, list] of Object.entries((info.HostConfig.PortBindings ?? {}) as Docker.PortMap)) {
    bindings[key] = ((list ?? []) as { HostIp?: string; HostPort?: string }[]).flatMap((b) => {
      if (b.HostPort && b.HostPort !== '0') return [b];
      const mapped = current[key] ?? [];
      // No HostIp: Docker published it on 0.0.0.0 and on :: (20.10 may give them different
      // ports): one pinned binding per address, each with the port it had.
      const got = b.HostIp ? mapped.filter((m) => m.HostIp === b.HostIp) : mapped;
      if (!got.length || got.some((m) => !m.HostPort)) return [b];
      pinned += got.length;
      return got.map((m) => ({ HostIp: m.HostIp, HostPort: m.HostPort }));
    });
  }
  return { bindings, pinned };
}

/** "8080/tcp 0.0.0.0" -> host port, for comparing a container's ports before and after a start. */
export function hostPorts(info: Docker.ContainerInspectInfo | null): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, list] of Object.entries(
    (info?.NetworkSettings?.Ports ?? {}) as Record<string, { HostIp: string; HostPort: string }[] | null>,
  )) {
    for (const m of list ?? []) out.set(`${key} ${m.HostIp}`, m.HostPort);
  }
  return out;
}

export interface SamePortsStart {
  /** Published host ports that are the same after the start as before the stop, and those that differ. */
  kept: number;
  changed: number;
  /** Why the ports could not be kept (the engine refused the pinned start), or undefined. */
  fallback?: string;
}

/**
 * Starts a stopped container on the host ports it had before (`before`: its inspect data
 * while it ran). Docker gives a binding without a HostPort a new ephemeral port at every
 * start, and no API call changes an existing container's PortBindings except the start
 * call of API versions before 1.24, which still takes a HostConfig (engines before 25.0
 * accept those versions; 20.10 does). So: the container's own HostConfig, with each
 * ephemeral binding pinned to the port it had, is passed to a v1.23 start (and stays the
 * container's from then on: later starts keep the port too). An engine that refuses it
 * (too new, or the port taken meanwhile) gets a plain start, with its HostConfig as it was,
 * and the result says so.
 */
export async function startOnSamePorts(docker: Docker, id: string, before: Docker.ContainerInspectInfo): Promise<SamePortsStart> {
  const { bindings, pinned } = pinnedPortBindings(before);
  let fallback: string | undefined;
  if (pinned > 0) {
    // The modem puts its version (if any) in front of the path: this one asks for v1.23.
    const legacy = Object.assign(Object.create(docker.modem), { version: 'v1.23' }) as Docker['modem'];
    const start = (hostConfig: Docker.HostConfig) =>
      new Promise<void>((resolve, reject) =>
        legacy.dial(
          {
            path: `/containers/${id}/start`,
            method: 'POST',
            options: hostConfig,
            statusCodes: { 204: true, 304: true, 400: 'bad parameter', 404: 'no such container', 409: 'conflict', 500: 'server error' },
          },
          (err) => (err ? reject(err) : resolve()),
        ),
      );
    try {
      // The stopped container's docker-proxy may hold the port for a moment after the stop returns.
      for (let attempt = 1; ; attempt++) {
        try {
          await start({ ...before.HostConfig, PortBindings: bindings });
          break;
        } catch (err) {
          const msg = (err as { json?: { message?: string } }).json?.message ?? '';
          if (attempt >= 20 || !/already allocated|address already in use/i.test(msg)) throw err;
          await sleep(100);
        }
      }
    } catch (err) {
      fallback = (err as { json?: { message?: string } }).json?.message ?? (err as Error).message;
      // A refused version changed nothing; a taken port left the pinned HostConfig: put the original back.
      await start(before.HostConfig).catch(() => undefined);
    }
  }
  if (pinned === 0 || fallback !== undefined) await ignoreStatus(() => docker.getContainer(id).start(), [304]);
  // Per published port and host port (0.0.0.0 and :: may carry different ones).
  const pairs = (m: Map<string, string>) => new Set([...m].map(([k, port]) => `${k.split(' ')[0]} ${port}`));
  const want = pairs(hostPorts(before));
  let now = new Set<string>();
  // Right after a start the engine may not list every binding yet: ask again for up to 1 s.
  await waitUntil(
    async () => {
      now = pairs(hostPorts(await inspectOrNull(docker, id)));
      return [...want].every((p) => now.has(p));
    },
    1000,
    50,
  );
  let kept = 0;
  let changed = 0;
  for (const pair of want) {
    if (now.has(pair)) kept++;
    else changed++;
  }
  return fallback === undefined ? { kept, changed } : { kept, changed, fallback };
}
