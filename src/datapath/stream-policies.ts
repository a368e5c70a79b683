// What the byte-stream faults do to a relayed connection (see tcp-proxy.ts):
// each policy only decides when a chunk or a close is passed on, held,
// swallowed or answered with a reset.
import type { Relay, RelayHooks, TcpProxy } from './tcp-proxy.js';

/** A fault's behaviour on the proxy: hooks per connection and what it counted. */
export interface ProxyPolicy {
  open(relay: Relay, proxy: TcpProxy): RelayHooks;
  readonly counters: Record<string, number>;
  /** Frees what the policy holds beyond the relays (servers, agents). */
  close?(): Promise<void> | void;
}

/**
 * Latency: what the target sends is held delayMs() before it goes on. Order is
 * kept (a chunk never overtakes an earlier one) and the target's FIN follows
 * its last chunk.
 */
export function delayPolicy(delayMs: () => number): ProxyPolicy {
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

/**
 * Resets (RST to both ends) the chosen connections once afterBytes bytes went
 * through them, both ways together: the byte after the limit, whichever side
 * sends it, is not passed on and the RST follows the bytes before it. Or
 * afterMs after the connection was accepted.
 */
export function resetPolicy(p: { afterBytes?: number; afterMs?: number; chosen: () => boolean }): ProxyPolicy {
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

/**
 * Stalls connections: after afterBytes bytes (both ways together; 0 = at
 * once) whatever either side sends is read and dropped, FINs included, so
 * the target waits for an answer that never comes; closeAfterMs later both
 * sides get a FIN.
 */
export function stallPolicy(p: { afterBytes: number; closeAfterMs?: number }): ProxyPolicy {
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

/** Slow close: a FIN from either side reaches the other delayMs later; data is not held. */
export function slowClosePolicy(delayMs: number): ProxyPolicy {
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
