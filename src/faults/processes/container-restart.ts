// container-restart: docker restart (stop signal, SIGKILL after timeoutSec,
// start). One engine call that the daemon finishes even if we die, so nothing
// is journaled; nothing to revert either: the container runs when apply returns.
import { z } from 'zod';
import type { FaultKind } from '../fault-kind.js';
import { dockerTimeMs, inspectOrNull } from '../../targets/docker-state.js';
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
}

export const containerRestart: FaultKind<'container-restart', typeof schema, ContainerRestartStats> = {
  kind: 'container-restart',
  matched: () => 1,
  matchedWhat: 'the target container (always reached)',
  schema,
  async apply(p, target, ctx) {
    const t0 = performance.now();
    await ctx.docker.getContainer(target.id).restart(p.timeoutSec === undefined ? {} : { t: p.timeoutSec });
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
    };
    return {
      stats: () => ({ ...stats }),
      revert: () => undefined, // a restart cannot be taken back; documented
    };
  },
};
