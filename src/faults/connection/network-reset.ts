// network-reset: connections the target opens are reset (an RST reaches both
// the target and the destination) after afterBytes bytes went through them or
// afterMs after they were opened; percent picks which connections (seeded).
// connect4 redirects them to the proxy on the target's gateway (proxied-fault.ts).
import { z } from 'zod';
import { applyProxied, type ProxiedStats } from '../../datapath/proxied-fault.js';
import type { ProxyPolicy } from '../../datapath/proxy-policy.js';
import { seededChance } from '../../datapath/match.js';
import type { FaultKind } from '../fault-kind.js';
import { byteCount, connectionScope, millis, percent, resolveConnectionScope } from '../params.js';

const ONE_OF = 'exactly one of afterBytes (bytes through the connection, both ways) and afterMs (ms after it opened)';

const schema = z
  .strictObject({
    /** Reset once this many bytes went through the connection, both ways together (0 to 2^31-1). */
    afterBytes: byteCount().optional(),
    /** Reset this many ms after the connection was accepted (0-600000). Exactly one of the two. */
    afterMs: millis().optional(),
    /** Share of connections reset, 0-100, drawn with the fault's seed. Default 100. */
    percent,
    ...connectionScope,
  })
  .refine((p) => (p.afterBytes === undefined) !== (p.afterMs === undefined), {
    error: ONE_OF,
    path: ['afterBytes'],
  });

export type NetworkResetParams = z.input<typeof schema>;

interface ResetCounters {
  [name: string]: number;
  connectionsReset: number;
  /** Connections the draw left alone. */
  connectionsSpared: number;
}

export type NetworkResetStats = ProxiedStats<ResetCounters>;

/**
 * Resets (RST to both ends) the chosen connections once afterBytes bytes went
 * through them, both ways together: the byte after the limit, whichever side
 * sends it, is not passed on and the RST follows the bytes before it. Or
 * afterMs after the connection was accepted.
 */
function resetPolicy(p: { afterBytes?: number; afterMs?: number; chosen: () => boolean }): ProxyPolicy<ResetCounters> {
  const counters = { connectionsReset: 0, connectionsSpared: 0 };
  return {
    counters,
    open(relay) {
      if (!p.chosen()) {
        counters.connectionsSpared++;
        return {};
      }
      let done = false;
      const reset = () => {
        if (done) return;
        done = true;
        counters.connectionsReset++;
        relay.reset();
      };
      if (p.afterMs !== undefined) relay.after(p.afterMs, reset);
      const limit = p.afterBytes;
      if (limit === undefined) return {};
      return {
        data(way, chunk) {
          if (done) return;
          const left = limit - relay.carried.up - relay.carried.down;
          if (chunk.length < left) return relay.forward(way, chunk);
          // The bytes up to the limit leave our socket before the RST does.
          relay.forward(way, chunk.subarray(0, left), reset);
        },
      };
    },
  };
}

export const networkReset: FaultKind<'network-reset', typeof schema, NetworkResetStats> = {
  kind: 'network-reset',
  matched: (s) => s.connectsMatched + s.connections,
  matchedWhat: 'connections of the target that fit peer and port',
  schema,
  programs: ['connect'],
  apply: async (p, target, ctx) =>
    applyProxied(
      'network-reset',
      target,
      ctx,
      await resolveConnectionScope(p, ctx),
      resetPolicy({ afterBytes: p.afterBytes, afterMs: p.afterMs, chosen: seededChance(ctx.seed, p.percent) }),
    ),
};
