// container-restart: as docker restart (stop signal, SIGKILL after timeoutSec,
// start), in two engine calls so that the start keeps the host ports the
// container had (startOnSamePorts; docker restart would give it new ones).
// A docker-start undo is journaled between them, so a run that dies after the
// stop has its container started by the next run. Nothing to revert: the
// container runs when apply returns.
import { z } from 'zod';
import type { FaultKind } from '../fault-kind.js';
import { dockerTimeMs, ignoreStatus, inspectOrNull, startOnSamePorts } from '../../targets/docker-state.js';
import { stopTimeoutSec } from '../params.js';

const schema = z.strictObject({
  /** Seconds between the stop signal and SIGKILL (0-3600), as `docker restart -t`. Default: the container's StopTimeout, else 10. */
  timeoutSec: stopTimeoutSec.optional(),
});

export type ContainerRestartParams = z.input<typeof schema>;

export interface ContainerRestartStats {
  /** How long `docker restart` took, in ms. */
  restartMs: number;
  oldPid: number;
  newPid: number;
  /** From the old process's end to the new one's start, by the engine's clock (-1: unknown). */
  downtimeMs: number;
  /** Always 0: a restart cannot be taken back. */
  revertible: number;
  /** Published host ports the container answers on as before the restart, and those that changed. */
  hostPortsKept: number;
  hostPortsChanged: number;
}

export const containerRestart: FaultKind<'container-restart', typeof schema, ContainerRestartStats> = {
  kind: 'container-restart',
  matched: () => 1,
  matchedWhat: 'the target container (always reached)',
  schema,
  async apply(p, target, ctx) {
    const t0 = performance.now();
    const container = ctx.docker.getContainer(target.id);
    const before = await inspectOrNull(ctx.docker, target.id);
    const journal = ctx.journal();
    const entry = journal.record(`container-restart on ${target.name}`, [{ type: 'docker-start', containerId: target.id }]);
    let ports = { kept: 0, changed: 0 };
    try {
      await ignoreStatus(() => container.stop(p.timeoutSec === undefined ? {} : { t: p.timeoutSec }), [304]);
      if (before) ports = await startOnSamePorts(ctx.docker, target.id, before);
      else await ignoreStatus(() => container.start(), [304]);
      journal.forget(entry);
    } catch (err) {
      await journal.revert(entry).catch(() => undefined); // a plain start, as the reaper would
      throw err;
    }
    const restartMs = performance.now() - t0;
    ctx.resolver.forget(target.id);
    const info = await inspectOrNull(ctx.docker, target.id);
    const started = dockerTimeMs(info?.State.StartedAt);
    const finished = dockerTimeMs(info?.State.FinishedAt);
    const stats = {
      restartMs: Math.round(restartMs),
      oldPid: target.pid,
      newPid: info?.State.Pid ?? 0,
      // From the old process's end to the new one's start, by the engine's clock.
      downtimeMs: Number.isFinite(started - finished) ? Math.max(0, started - finished) : -1,
      revertible: 0,
      hostPortsKept: ports.kept,
      hostPortsChanged: ports.changed,
    };
    return {
      stats: () => ({ ...stats }),
      revert: () => undefined, // a restart cannot be taken back; documented
    };
  },
};
