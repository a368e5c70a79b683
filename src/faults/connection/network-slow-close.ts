// network-slow-close: on connections the target opens, a close (FIN) from
// either side reaches the other delayMs later; data still flows meanwhile
// (half-close). connect4 redirects the connections to the proxy on the
// target's gateway (proxied-fault.ts).
import { z } from 'zod';
import { applyProxied, type ProxiedStats } from '../../datapath/proxied-fault.js';
import type { ProxyPolicy } from '../../datapath/proxy-policy.js';
import type { FaultKind } from '../fault-kind.js';
import { connectionScope, millis, resolveConnectionScope } from '../params.js';

const schema = z.strictObject({
  /** How long a close (FIN) from either side is held before it is passed on, in ms (0-600000). Required. */
  delayMs: millis(),
  ...connectionScope,
});

export type NetworkSlowCloseParams = z.input<typeof schema>;

interface SlowCloseCounters {
  [name: string]: number;
  closesDelayed: number;
}

export type NetworkSlowCloseStats = ProxiedStats<SlowCloseCounters>;

/** Slow close: a FIN from either side reaches the other delayMs later; data is not held. */
function slowClosePolicy(delayMs: number): ProxyPolicy<SlowCloseCounters> {
  const counters = { closesDelayed: 0 };
  return {
    counters,
    open(relay) {
      return {
        end(way) {
          counters.closesDelayed++;
          relay.after(delayMs, () => relay.forwardEnd(way));
        },
      };
    },
  };
}

export const networkSlowClose: FaultKind<'network-slow-close', typeof schema, NetworkSlowCloseStats> = {
  kind: 'network-slow-close',
  matched: (s) => s.connectsMatched + s.connections,
  matchedWhat: 'connections of the target that fit peer and port',
  schema,
  programs: ['connect'],
  apply: async (p, target, ctx) =>
    applyProxied('network-slow-close', target, ctx, await resolveConnectionScope(p, ctx), slowClosePolicy(p.delayMs)),
};
