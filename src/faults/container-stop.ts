// container-stop: docker stop (the image's stop signal, then SIGKILL after
// timeoutSec) until revert, which starts the container again and waits until
// it runs. The container comes back with a new pid and cgroup (and possibly a
// new IP address): later injects resolve it afresh.
import { z } from 'zod';
import type { FaultKind } from './fault-kind.js';
import { hold } from './container-hold.js';
import { ignoreStatus, inspectOrNull, stopTimeoutSec, waitUntil } from './docker-state.js';

const schema = z.strictObject({ timeoutSec: stopTimeoutSec.optional() });

export type ContainerStopParams = z.input<typeof schema>;

/** How long revert waits for the started container to run. */
const START_WAIT_MS = 30_000;

export const containerStop: FaultKind<z.output<typeof schema>> = {
  kind: 'container-stop',
  schema,
  targetStates: ['running', 'stopped'],
  async apply(p, target, ctx) {
    const container = ctx.docker.getContainer(target.id);
    const t0 = performance.now();
    const h = await hold(
      {
        key: `stopped:${target.id}`,
        description: `container-stop on ${target.name}`,
        undo: { type: 'docker-start', containerId: target.id },
        isHeld: async () => !((await inspectOrNull(ctx.docker, target.id))?.State.Running ?? false),
        // 304: it stopped by itself meanwhile.
        enter: () => ignoreStatus(() => container.stop(p.timeoutSec === undefined ? {} : { t: p.timeoutSec }), [304]),
        async afterUndo() {
          ctx.resolver.forget(target.id);
          const ok = await waitUntil(async () => {
            const info = await inspectOrNull(ctx.docker, target.id);
            return !info || info.State.Running;
          }, START_WAIT_MS, 50);
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
      }),
      async revert() {
        stoppedMs ??= performance.now() - t0;
        await h.release();
      },
    };
  },
};
