// container-pause: freezes every process of the target (docker pause, the
// freezer cgroup) until revert. The kernel still accepts connections for it,
// so callers hang instead of failing; requests in flight finish after revert.
import { z } from 'zod';
import type { FaultKind } from '../fault-kind.js';
import { hold } from '../../targets/container-hold.js';
import { inspectOrNull } from '../../targets/docker-state.js';

const schema = z.strictObject({});

/** No parameters of its own: it pauses until revert. */
export type ContainerPauseParams = Record<never, never>;

export interface ContainerPauseStats {
  /** 1 while paused by this fault. */
  paused: number;
  /** How long it has been (or was) paused, in ms. */
  pausedMs: number;
  /** 1 when the container was already paused: revert leaves it so. */
  foundPaused: number;
}

export const containerPause: FaultKind<'container-pause', typeof schema, ContainerPauseStats> = {
  kind: 'container-pause',
  matched: () => 1,
  matchedWhat: 'the target container (always reached)',
  schema,
  targetStates: ['running', 'paused'],
  async apply(_p, target, ctx) {
    const container = ctx.docker.getContainer(target.id);
    const h = await hold(
      {
        key: `paused:${target.id}`,
        description: `container-pause on ${target.name}`,
        undo: { type: 'docker-unpause', containerId: target.id },
        isHeld: async () => (await inspectOrNull(ctx.docker, target.id))?.State.Paused ?? false,
        enter: () => container.pause(),
      },
      ctx.journal,
    );
    const since = performance.now();
    let pausedMs: number | undefined;
    return {
      stats: () => ({
        paused: pausedMs === undefined ? 1 : 0,
        pausedMs: Math.round(pausedMs ?? performance.now() - since),
        foundPaused: h.foundHeld ? 1 : 0,
      }),
      async revert() {
        pausedMs ??= performance.now() - since;
        await h.release(); // the journal's docker-unpause: a container gone or stopped meanwhile is done
      },
    };
  },
};
