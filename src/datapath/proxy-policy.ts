// A fault's behaviour on the proxy (tcp-proxy.ts): hooks per relayed
// connection that decide when a chunk or a close is passed on, held, swallowed
// or answered with a reset, and what it counted.
import type { Relay, RelayHooks, TcpProxy } from './tcp-proxy.js';

export interface ProxyPolicy<C extends Record<string, number> = Record<string, number>> {
  open(relay: Relay, proxy: TcpProxy): RelayHooks;
  readonly counters: C;
  /**
   * Where the policy sits when several data-path faults hold one connection:
   * 'stream' (the default) nearer the target, 'http' nearer the destination,
   * as the network is between a client and the server's answers.
   */
  readonly layer?: 'stream' | 'http';
  /**
   * The fault is reverted: its effect stops on the connections it still
   * carries (what it holds beyond the relays' own hooks goes on at once; no
   * further fault). Those connections go on until either side closes them.
   */
  release?(): void;
  /** Frees what the policy holds beyond the relays (servers, agents), once its proxies carry nothing any more. */
  close?(): Promise<void> | void;
}
