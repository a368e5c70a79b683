// The proxies of this process, per target. A connection another fault's
// connect4 rule redirected to its proxy leaves the target towards the gateway
// on the proxy's port, no longer towards the peer: a packet-path fault of the
// same target (network-latency) that covers that peer follows those packets
// too, so that latency and http on one peer are both in force. Proxies
// announce themselves before their connect rules redirect anything; watchers
// add their rules before the announce returns.
import { peersOverlap, type PeerMatch } from '../kernel/peer-match.js';

export interface ProxyEntry {
  cgroupId: bigint;
  /**
   * 'outbound': a proxy on the gateway that connect4 sends connections the target opens to;
   * 'inbound': a listener in the target's netns that a NAT REDIRECT sends connections it accepts to.
   */
  way: 'outbound' | 'inbound';
  /** The proxy's listener (outbound: on the target's gateway; inbound: in its netns, any address). */
  address: string;
  /** outbound: its IPv6 listener (on the target's IPv6 gateway, same port), where connect6 sends connections. */
  address6?: string;
  port: number;
  /** outbound: the destinations its connect rules redirect; inbound: the clients. */
  peers: readonly PeerMatch[];
  /** outbound: the destination port redirected (all when absent). */
  destPort?: number;
  /** inbound: the target's ports redirected. */
  ports?: readonly number[];
  /**
   * outbound: the connections it carries that the target opened to it (not hops from other
   * proxies), as the target sees them (its address and port) and where each was going.
   */
  carried?(): readonly CarriedConnection[];
}

/** A connection a proxy carries: the target's end of it (the client), and its original destination. */
export interface CarriedConnection {
  client: string;
  clientPort: number;
  dst: { address: string; port: number };
}

export interface ProxyWatcher {
  cgroupId: bigint;
  join(e: ProxyEntry): Promise<void>;
  leave(e: ProxyEntry): Promise<void>;
}

const proxies = new Set<ProxyEntry>();
const watchers = new Set<ProxyWatcher>();

/** Registers a proxy; resolves once every watcher of its target has followed it. Returns the leave function. */
export async function announceProxy(e: ProxyEntry): Promise<() => Promise<void>> {
  proxies.add(e);
  const mine = [...watchers].filter((w) => w.cgroupId === e.cgroupId);
  await Promise.all(mine.map((w) => w.join(e).catch(() => undefined)));
  let left = false;
  return async () => {
    if (left) return;
    left = true;
    proxies.delete(e);
    const now = [...watchers].filter((w) => w.cgroupId === e.cgroupId);
    await Promise.all(now.map((w) => w.leave(e).catch(() => undefined)));
  };
}

/** The target's proxies now. */
export function proxiesOf(cgroupId: bigint): ProxyEntry[] {
  return [...proxies].filter((p) => p.cgroupId === cgroupId);
}

/** The target's proxies now, and a subscription for those announced later. */
export function watchProxies(w: ProxyWatcher): { current: ProxyEntry[]; stop(): void } {
  watchers.add(w);
  return { current: [...proxies].filter((p) => p.cgroupId === w.cgroupId), stop: () => watchers.delete(w) };
}

/** Whether two peer sets have an address in common. */
export function peersIntersect(a: readonly PeerMatch[], b: readonly PeerMatch[]): boolean {
  return a.some((x) => b.some((y) => peersOverlap(x, y)));
}

/** Whether a proxy carries connections a fault with these peers and port covers. */
export function proxyOverlaps(e: ProxyEntry, peers: readonly PeerMatch[], port: number | undefined): boolean {
  if (e.way === 'inbound' && port !== undefined && !(e.ports ?? []).includes(port)) return false;
  if (e.way === 'outbound' && port !== undefined && e.destPort !== undefined && port !== e.destPort) return false;
  return peersIntersect(e.peers, peers);
}
