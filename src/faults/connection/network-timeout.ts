// network-timeout: connections the target opens stall. After afterBytes bytes
// (both ways together; default 0: at once) whatever either side sends is
// accepted and dropped, so the target waits for an answer that never comes;
// with closeAfterMs both sides then get a FIN. connect4 redirects the
// connections to the proxy on the target's gateway (proxied-fault.ts).
import { z } from 'zod';
import { applyProxied, type ProxiedStats } from '../../datapath/proxied-fault.js';
import type { ProxyPolicy } from '../../datapath/proxy-policy.js';
import type { FaultKind } from '../fault-kind.js';
import { byteCount, connectionScope, millis, resolveConnectionScope } from '../params.js';

const schema = z.strictObject({
  /** Stall once this many bytes went through, both ways together (0 to 2^31-1). Default 0: at once. */
  afterBytes: byteCount().default(0),
  /** Close (FIN to both sides) this many ms after the stall began (0-600000). Default: never, until revert. */
  closeAfterMs: millis().optional(),
  ...connectionScope,
});

export type NetworkTimeoutParams = z.input<typeof schema>;

interface StallCounters {
  [name: string]: number;
  connectionsStalled: number;
  /** Bytes read from either side and dropped. */
  bytesSwallowed: number;
  stalledConnectionsClosed: number;
}

export type NetworkTimeoutStats = ProxiedStats<StallCounters>;

/**
 * Stalls connections: after afterBytes bytes (both ways together; 0 = at
 * once) whatever either side sends is read and dropped, FINs included, so
 * the target waits for an answer that never comes; closeAfterMs later both
 * sides get a FIN.
 */
function stallPolicy(p: { afterBytes: number; closeAfterMs?: number }): ProxyPolicy<StallCounters> {
  const counters = { connectionsStalled: 0, bytesSwallowed: 0, stalledConnectionsClosed: 0 };
  return {
    counters,
    open(relay) {
      let stalled = false;
      const stall = () => {
        if (stalled) return;
        stalled = true;
        counters.connectionsStalled++;
        if (p.closeAfterMs !== undefined) {
          relay.after(p.closeAfterMs, () => {
            counters.stalledConnectionsClosed++;
            relay.close();
          });
        }
      };
      if (p.afterBytes === 0) stall();
      return {
        data(way, chunk) {
          if (!stalled) {
            const left = p.afterBytes - relay.carried.up - relay.carried.down;
            relay.forward(way, chunk.subarray(0, left));
            if (chunk.length < left) return;
            chunk = chunk.subarray(left);
            stall();
          }
          counters.bytesSwallowed += chunk.length;
        },
        end(way) {
          if (!stalled) relay.forwardEnd(way);
        },
      };
    },
  };
}

export const networkTimeout: FaultKind<'network-timeout', typeof schema, NetworkTimeoutStats> = {
  kind: 'network-timeout',
  matched: (s) => s.connectsMatched + s.connections,
  matchedWhat: 'connections of the target that fit peer and port',
  schema,
  programs: ['connect'],
  apply: async (p, target, ctx) =>
    applyProxied(
      'network-timeout',
      target,
      ctx,
      await resolveConnectionScope(p, ctx),
      stallPolicy({ afterBytes: p.afterBytes, closeAfterMs: p.closeAfterMs }),
    ),
};
