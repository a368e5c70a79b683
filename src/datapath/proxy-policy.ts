// A fault's behaviour on the proxy (tcp-proxy.ts): hooks per relayed
// connection that decide when a chunk or a close is passed on, held, swallowed
// or answered with a reset, and what it counted.
import type { Relay, RelayHooks, TcpProxy } from './tcp-proxy.js';

export interface ProxyPolicy<C extends Record<string, number> = Record<string, number>> {
  open(relay: Relay, proxy: TcpProxy): RelayHooks;
  readonly counters: C;
  /** Frees what the policy holds beyond the relays (servers, agents). */
  close?(): Promise<void> | void;
}
