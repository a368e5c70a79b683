// network-timeout: connections the target opens stall. After afterBytes bytes
// (both ways together; default 0: at once) whatever either side sends is
// accepted and held, so the target waits for an answer that never comes;
// with closeAfterMs both sides then get a FIN. Revert delivers what was held.
// connect4 redirects the connections to the proxy on the target's gateway
// (proxied-fault.ts).
import { z } from 'zod';
import { applyProxied, type ProxiedStats } from '../../datapath/proxied-fault.js';
import { applyBothPaths, type PacketPathStats } from '../../datapath/packet-path.js';
import type { ProxyPolicy } from '../../datapath/proxy-policy.js';
import type { Way } from '../../datapath/tcp-proxy.js';
import type { FaultKind } from '../fault-kind.js';
import { byteCount, connections, connectionScope, millis, resolveConnectionScope } from '../params.js';

const schema = z.strictObject({
  /** Stall once this many bytes went through, both ways together (0 to 2^31-1). Default 0: at once. */
  afterBytes: byteCount().default(0),
  /** Close (FIN to both sides) this many ms after the stall began (0-600000). Default: never, until revert. */
  closeAfterMs: millis().optional(),
  ...connectionScope,
  /** `'inbound'` (connections the target accepts), `'outbound'` (it opens) or `'all'`. Default `'all'`. */
  connections,
});

export type NetworkTimeoutParams = z.input<typeof schema>;

interface StallCounters {
  [name: string]: number;
  connectionsStalled: number;
  /** Bytes read from either side and held (delivered at revert; never sent if the connection is closed first). */
  bytesSwallowed: number;
  stalledConnectionsClosed: number;
}

/**
 * New outbound connections: the proxy's counters; connections the target accepts and those
 * open at inject: the packet path's (connectionsHit: stalled there, packetsHeld). Both hold
 * what was sent until revert, which delivers it (closeAfterMs applies to the proxied
 * connections only).
 */
export type NetworkTimeoutStats = Partial<ProxiedStats<StallCounters>> & PacketPathStats;

/**
 * Bytes a stalled connection holds in our memory, both ways together; beyond that
 * we stop reading it, and TCP's flow control holds the rest in the kernel's buffers.
 */
export const STALL_HOLD_BYTES = 1 << 20;

/**
 * Stalls connections: after afterBytes bytes (both ways together; 0 = at
 * once) whatever either side sends is read and held, FINs included, so the
 * target waits for an answer that never comes; closeAfterMs later both sides
 * get a FIN (what was held is never sent). Revert delivers what was held, in
 * order, and the connection flows again.
 */
function stallPolicy(p: { afterBytes: number; closeAfterMs?: number }): ProxyPolicy<StallCounters> {
  const counters = { connectionsStalled: 0, bytesSwallowed: 0, stalledConnectionsClosed: 0 };
  return {
    counters,
    open(relay) {
      let stalled = false;
      const held: { way: Way; chunk: Buffer | null }[] = []; // null: the end of that way
      let heldBytes = 0;
      const paused = new Set<Way>();
      const from = (way: Way) => (way === 'up' ? relay.client : relay.upstream);
      const stall = () => {
        if (stalled) return;
        stalled = true;
        counters.connectionsStalled++;
        if (p.closeAfterMs !== undefined) {
          relay.after(p.closeAfterMs, () => {
            counters.stalledConnectionsClosed++;
            held.length = 0;
            relay.close();
          });
        }
      };
      const hold = (way: Way, chunk: Buffer) => {
        if (!chunk.length) return;
        counters.bytesSwallowed += chunk.length;
        held.push({ way, chunk });
        heldBytes += chunk.length;
        if (heldBytes >= STALL_HOLD_BYTES && !paused.has(way)) {
          paused.add(way);
          from(way).pause();
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
          hold(way, chunk);
        },
        end(way) {
          if (!stalled) return relay.forwardEnd(way);
          held.push({ way, chunk: null });
        },
        release() {
          // Reading goes on (from the next tick on: what comes then follows what was held).
          for (const way of paused) from(way).resume();
          paused.clear();
          // Delivered in the order they came, each way's end after its bytes.
          for (const h of held.splice(0)) {
            if (h.chunk) relay.forward(h.way, h.chunk);
            else relay.forwardEnd(h.way);
          }
        },
      };
    },
  };
}

export const networkTimeout: FaultKind<'network-timeout', typeof schema, NetworkTimeoutStats> = {
  kind: 'network-timeout',
  // New outbound connects the proxy took, plus the connections the packet path saw (accepted, or open at inject).
  matched: (s) => (s.connectsMatched ?? 0) + s.connectionsMatched,
  matchedWhat: 'connections of the target that fit connections, peer and port',
  schema,
  programs: ['connect'],
  async apply(p, target, ctx) {
    const scope = await resolveConnectionScope(p, ctx);
    return applyBothPaths(
      'network-timeout',
      target,
      ctx,
      {
        queue: { mode: 'hold', afterBytes: p.afterBytes },
        connections: p.connections,
        peers: scope.peers,
        port: scope.port,
        hooks: 'both',
      },
      () => applyProxied('network-timeout', target, ctx, scope, stallPolicy({ afterBytes: p.afterBytes, closeAfterMs: p.closeAfterMs })),
    );
  },
};
