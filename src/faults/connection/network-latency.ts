// network-latency: the data the target sends on connections it opens arrives
// latencyMs (+/- jitterMs) later. connect4 redirects those connections to the
// proxy on the target's gateway (datapath/proxied-fault.ts), where the delay
// policy below holds each chunk before passing it on.
import { z } from 'zod';
import { applyProxied, type ProxiedStats } from '../../datapath/proxied-fault.js';
import type { ProxyPolicy } from '../../datapath/proxy-policy.js';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { FaultKind } from '../fault-kind.js';
import { connectionScope, resolveConnectionScope } from '../params.js';

const MS = 'a number of milliseconds from 0 to 60000';
const ms = () => z.number({ error: MS }).min(0, { error: MS }).max(60_000, { error: MS });

const schema = z.strictObject({
  /** Added to the data the target sends, in ms (0-60000). Required. */
  latencyMs: ms(),
  /** Uniform +/- spread around `latencyMs`, in ms (0-60000); order is kept. Default 0. */
  jitterMs: ms().default(0),
  ...connectionScope,
});

export type NetworkLatencyParams = z.input<typeof schema>;

interface LatencyCounters {
  [name: string]: number;
  /** Chunks the target sent that were held. */
  chunksDelayed: number;
}

/** Connects redirected to the proxy, the proxy's relays, and the chunks held. */
export type NetworkLatencyStats = ProxiedStats<LatencyCounters>;

/**
 * Latency: what the target sends is held delayMs() before it goes on. Order is
 * kept (a chunk never overtakes an earlier one) and the target's FIN follows
 * its last chunk.
 */
function delayPolicy(delayMs: () => number): ProxyPolicy<LatencyCounters> {
  const counters = { chunksDelayed: 0 };
  return {
    counters,
    open(relay) {
      let dueAt = 0;
      let pending = 0;
      let ended = false;
      return {
        data(way, chunk) {
          if (way === 'down') return relay.forward(way, chunk);
          counters.chunksDelayed++;
          const now = performance.now();
          dueAt = Math.max(now + delayMs(), dueAt);
          pending++;
          relay.after(dueAt - now, () => {
            pending--;
            relay.forward('up', chunk);
            if (ended && pending === 0) relay.forwardEnd('up');
          });
        },
        end(way) {
          if (way === 'down') return relay.forwardEnd(way);
          ended = true;
          if (pending === 0) relay.forwardEnd('up');
        },
      };
    },
  };
}

export const networkLatency: FaultKind<'network-latency', typeof schema, NetworkLatencyStats> = {
  kind: 'network-latency',
  matched: (s) => s.connectsMatched + s.connections,
  matchedWhat: 'connections of the target that fit peer and port',
  schema,
  programs: ['connect'],
  async apply(p, target, ctx) {
    const rng = xoroshiro128plus(ctx.seed);
    const delayMs = p.jitterMs > 0 ? () => Math.max(0, p.latencyMs + (uniformFloat64(rng) * 2 - 1) * p.jitterMs) : () => p.latencyMs;
    const scope = await resolveConnectionScope(p, ctx);
    return applyProxied('network-latency', target, ctx, scope, delayPolicy(delayMs));
  },
};
