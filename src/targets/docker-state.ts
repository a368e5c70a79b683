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
