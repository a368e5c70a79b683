// network-slow-close: on connections the target opens, a close (FIN) from
// either side reaches the other delayMs later; data still flows meanwhile
// (half-close). connect4 redirects the connections to the proxy on the
// target's gateway (proxied-fault.ts).
import { z } from 'zod';
import { applyProxied, type ProxiedStats } from '../../datapath/proxied-fault.js';
import { applyBothPaths, type PacketPathStats } from '../../datapath/packet-path.js';
import type { ProxyPolicy } from '../../datapath/proxy-policy.js';
import type { Way } from '../../datapath/tcp-proxy.js';
import type { FaultKind } from '../fault-kind.js';
import { connections, connectionScope, millis, resolveConnectionScope } from '../params.js';

const schema = z.strictObject({
  /** How long a close (FIN) from either side is held before it is passed on, in ms (0-600000). Required. */
  delayMs: millis(),
  ...connectionScope,
  /** `'inbound'` (connections the target accepts), `'outbound'` (it opens) or `'all'`. Default `'all'`. */
  connections,
});

export type NetworkSlowCloseParams = z.input<typeof schema>;

interface SlowCloseCounters {
  [name: string]: number;
  closesDelayed: number;
}

/** New outbound connections: the proxy's counters; accepted and open-at-inject ones: the packet path's (packetsDelayed: FINs held). */
export type NetworkSlowCloseStats = Partial<ProxiedStats<SlowCloseCounters>> & PacketPathStats;

/** Slow close: a FIN from either side reaches the other delayMs later; data is not held. */
function slowClosePolicy(delayMs: number): ProxyPolicy<SlowCloseCounters> {
  const counters = { closesDelayed: 0 };
  return {
    counters,
    open(relay) {
      const pending = new Set<Way>();
      return {
        end(way) {
          counters.closesDelayed++;
          pending.add(way);
          relay.after(delayMs, () => {
            pending.delete(way);
            relay.forwardEnd(way);
          });
        },
        // Revert: the closes held go through at once.
        release() {
          for (const way of pending) relay.forwardEnd(way);
          pending.clear();
        },
      };
    },
  };
}

export const networkSlowClose: FaultKind<'network-slow-close', typeof schema, NetworkSlowCloseStats> = {
  kind: 'network-slow-close',
  // New outbound connects the proxy took, plus the connections the packet path saw (accepted, or open at inject).
  matched: (s) => (s.connectsMatched ?? 0) + s.connectionsMatched,
  matchedWhat: 'connections of the target that fit connections, peer and port',
  schema,
  programs: ['connect'],
  async apply(p, target, ctx) {
    const scope = await resolveConnectionScope(p, ctx);
    return applyBothPaths(
      'network-slow-close',
      target,
      ctx,
      // On packets: a FIN either way is held delayMs; data is not.
      {
        queue: { mode: 'delay', delayMs: p.delayMs },
        connections: p.connections,
        peers: scope.peers,
        port: scope.port,
        hooks: 'both',
        finOnly: true,
      },
      () => applyProxied('network-slow-close', target, ctx, scope, slowClosePolicy(p.delayMs)),
    );
  },
};
