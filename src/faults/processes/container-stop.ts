// container-stop: docker stop (the image's stop signal, then SIGKILL after
// timeoutSec) until revert, which starts the container again, on the host
// ports it had (startOnSamePorts), and waits until it runs. The container comes
// back with a new pid and cgroup (and possibly a new IP address): later injects
// resolve it afresh.
import { z } from 'zod';
import type { FaultKind } from '../fault-kind.js';
import { hold } from '../../targets/container-hold.js';
import { ignoreStatus, inspectOrNull, startOnSamePorts, waitUntil, type SamePortsStart } from '../../targets/docker-state.js';
import { stopTimeoutSec } from '../params.js';

const schema = z.strictObject({
  /** Seconds between the stop signal and SIGKILL (0-3600), as `docker stop -t`. Default: the container's StopTimeout, else 10. */
  timeoutSec: stopTimeoutSec.optional(),
});

export type ContainerStopParams = z.input<typeof schema>;

export interface ContainerStopStats {
  /** 1 while stopped by this fault. */
  stopped: number;
  /** How long `docker stop` took, in ms. */
  stopMs: number;
  exitCode: number;
  /** How long it has been (or was) stopped, in ms. */
  stoppedMs: number;
  /** 1 when the container was already stopped: revert leaves it so. */
  foundStopped: number;
  /** After revert: published host ports the container answers on as before, and those that changed (-1 until revert). */
  hostPortsKept: number;
  hostPortsChanged: number;
}

/** How long revert waits for the started container to run. */
const START_WAIT_MS = 30_000;

export const containerStop: FaultKind<'container-stop', typeof schema, ContainerStopStats> = {
  kind: 'container-stop',
  matched: () => 1,
  matchedWhat: 'the target container (always reached)',
  schema,
  targetStates: ['running', 'stopped'],
  async apply(p, target, ctx) {
    const container = ctx.docker.getContainer(target.id);
    const before = await inspectOrNull(ctx.docker, target.id);
    let started: SamePortsStart | undefined;
    const t0 = performance.now();
    const h = await hold(
      {
        key: `stopped:${target.id}`,
        description: `container-stop on ${target.name}`,
        undo: { type: 'docker-start', containerId: target.id },
        isHeld: async () => !((await inspectOrNull(ctx.docker, target.id))?.State.Running ?? false),
        // 304: it stopped by itself meanwhile.
        enter: () => ignoreStatus(() => container.stop(p.timeoutSec === undefined ? {} : { t: p.timeoutSec }), [304]),
        // The journal's docker-start (what the reaper runs) lets Docker pick new host ports; alive, we keep them.
        undoLive: async () => {
          if (before) started = await startOnSamePorts(ctx.docker, target.id, before);
          else await ignoreStatus(() => container.start(), [304, 404]);
        },
        async afterUndo() {
          ctx.resolver.forget(target.id);
          const ok = await waitUntil(
            async () => {
              const info = await inspectOrNull(ctx.docker, target.id);
              return !info || info.State.Running;
            },
            START_WAIT_MS,
            50,
          );
          if (!ok) throw new Error(`container-stop: ${target.name} did not run again within ${START_WAIT_MS} ms of docker start`);
        },
      },
      ctx.journal,
    );
    const stopMs = performance.now() - t0;
    ctx.resolver.forget(target.id);
    const stopped = await inspectOrNull(ctx.docker, target.id);
    let stoppedMs: number | undefined;
    return {
      stats: () => ({
        stopped: stoppedMs === undefined ? 1 : 0,
        stopMs: Math.round(stopMs),
        exitCode: stopped?.State.ExitCode ?? -1,
        stoppedMs: Math.round(stoppedMs ?? performance.now() - t0),
        foundStopped: h.foundHeld ? 1 : 0,
        hostPortsKept: started?.kept ?? -1,
        hostPortsChanged: started?.changed ?? -1,
      }),
      async revert() {
        stoppedMs ??= performance.now() - t0;
        await h.release();
      },
    };
  },
};
