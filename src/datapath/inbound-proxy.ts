// A proxied fault on the connections the target ACCEPTS (the test process
// through a mapped port, other containers, the host). A NAT REDIRECT in the
// target's netns (targets/queue-rules.ts) sends new connections to its ports
// to a listener of ours opened inside that netns (kernel/netns-socket.ts);
// the fault's policy relays each one to the target's own server, connecting
// from inside the netns (locally generated packets do not pass PREROUTING, so
// they are not redirected again). Connections accepted before the inject keep
// going straight to the server: NAT decides on a connection's first packet;
// they are counted and warned about. Revert removes the rule first, then hands
// the relayed connections back (they go on, unfaulted, until they close). IPv6
// connections alike: the listener is dual-stack, the REDIRECT is also in the
// IPv6 tables when the netns has IPv6 (or the peer is IPv6).
import { closeSync } from 'node:fs';
import net from 'node:net';
import { ChaosSpecError } from '../contracts/errors.js';
import { connectInNetns, listenInNetns, originalDestination } from '../kernel/netns-socket.js';
import { peerCidr, peerCoversAddress, peerFamilies, type PeerMatch } from '../kernel/peer-match.js';
import { installRedirectRules, sandboxOf, type InstalledRedirect, type IpFamily } from '../targets/queue-rules.js';
import { keptRulesAvailable, keptRulesFailure, leaseRedirectSlot, targetListeningPorts, targetTcpTable } from '../targets/queue-slots.js';
import type { ResolvedTarget } from '../targets/resolve-target.js';
import { hasIpv6, tcpTableOf, type TcpTable } from '../targets/tcp-table.js';
import { connectionsInScope, type PacketPathContext } from './packet-path.js';
import type { Route } from './proxy-chain.js';
import type { AppliedProxied } from './proxied-fault.js';
import type { ProxyPolicy } from './proxy-policy.js';
import { announceProxy } from './proxy-registry.js';
import { TcpProxy, type ProxyCounters } from './tcp-proxy.js';

export interface InboundCounters {
  /** The target's ports whose new connections come to the proxy. */
  inboundPorts: number;
  /** Accepted connections the proxy relayed. */
  inboundConnections: number;
  /** Connections the target had accepted before the inject (in scope): the fault cannot reach them. */
  inboundConnectionsUnreached: number;
}

/**
 * The REDIRECT rules' sources per family: a peer's CIDR in its family, every
 * source ([]) for a peer that covers its whole family; IPv6 only when `ipv6`
 * (the netns has IPv6) or a peer is IPv6.
 */
export function redirectSources(peers: readonly PeerMatch[], ipv6: boolean): Partial<Record<IpFamily, string[]>> {
  const out: Partial<Record<IpFamily, string[] | 'any'>> = {};
  for (const p of peers) {
    const cidr = peerCidr(p);
    for (const f of peerFamilies(p)) {
      if (f === 6 && !ipv6 && p.family !== 6) continue;
      if (cidr === null) out[f] = 'any';
      else if (out[f] !== 'any') out[f] = [...((out[f] as string[] | undefined) ?? []), cidr];
    }
  }
  const result: Partial<Record<IpFamily, string[]>> = {};
  for (const f of [4, 6] as const) if (out[f] !== undefined) result[f] = out[f] === 'any' ? [] : (out[f] as string[]);
  return result;
}

/** IPv6 peers only, in a netns where no IPv6 socket can be made: refused. */
const noIpv6Peer = (kind: string, target: ResolvedTarget, peers: readonly PeerMatch[]) =>
  new ChaosSpecError(`chaos.inject(${kind})`, [
    {
      field: 'peer',
      value: peers.map((p) => p.label).join(', '),
      expected: `a peer the target can be reached from (no IPv6 socket can be made in ${target.name}'s network namespace)`,
    },
  ]);

/**
 * The proxy on a listener in the target's netns: each connection a REDIRECT sent
 * there goes, through the fault's policy, to where it was going (SO_ORIGINAL_DST),
 * connected from inside the netns (locally made packets do not pass PREROUTING).
 */
function relayingProxy<C extends Record<string, number>>(
  netns: string,
  listenFd: number,
  extra: InboundCounters,
  policy: ProxyPolicy<C>,
  me?: Stacked,
): TcpProxy {
  const proxy: TcpProxy = new TcpProxy({
    host: '',
    listenFd,
    lookup: (_addr, _port, client): Route | null => {
      const fd = (client as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (fd === undefined || fd < 0) return null;
      // A hop from a newer proxy of this netns carries where the connection was going, and its client.
      const hopKey = `${netns} ${client.remotePort}`;
      const hop = hops.get(hopKey);
      hops.delete(hopKey);
      const dst = hop?.dst ?? originalDestination(fd);
      const from = hop?.client ?? client.remoteAddress ?? '';
      extra.inboundConnections++;
      return {
        dst,
        hops: 0,
        connect({ allowHalfOpen }) {
          const next = me ? olderInForce(netns, me, from, dst.port) : undefined;
          const s = new net.Socket({
            fd: connectInNetns(netns, dst.address, next ? next.port : dst.port),
            allowHalfOpen,
            readable: true,
            writable: true,
          });
          s.setNoDelay(true);
          // Registered before the next proxy can accept it (that takes a turn of the event loop).
          if (next && s.localPort !== undefined) hops.set(`${netns} ${s.localPort}`, { dst, client: from });
          return s;
        },
      };
    },
    open: (relay) => policy.open(relay, proxy),
  });
  return proxy;
}

/** An inbound proxy in force on kept rules: its listener's port, and the scope it takes. */
interface Stacked {
  port: number;
  peers: readonly PeerMatch[];
  ports: readonly number[];
}

/**
 * The inbound proxies in force per netns, newest first. A REDIRECT sends a new
 * connection to the newest whose scope covers it; that one relays it on to the
 * next older one whose scope covers it too (a hop inside the netns, which
 * PREROUTING does not see), and the last to the server: two inbound faults on
 * one target are both in force, the newest first.
 */
const stacks = new Map<string, Stacked[]>();
/** Hops between our proxies by the hop's local port: where the connection was going, and its client. */
const hops = new Map<string, { dst: { address: string; port: number }; client: string }>();

function covers(peers: readonly PeerMatch[], address: string): boolean {
  return peers.length === 0 || peers.some((p) => peerCoversAddress(p, address));
}

function olderInForce(netns: string, me: Stacked, client: string, port: number): Stacked | undefined {
  const stack = stacks.get(netns) ?? [];
  const i = stack.indexOf(me);
  if (i < 0) return undefined;
  return stack.slice(i + 1).find((x) => x.ports.includes(port) && covers(x.peers, client));
}

/**
 * The proxy listens, then announces itself: packet-path faults of the target (latency...)
 * follow the connections it relays, before any is redirected to it. Returns the unannounce.
 */
async function listenAnnounced(
  proxy: TcpProxy,
  target: ResolvedTarget,
  listener: { ipv6: boolean; port: number },
  peers: readonly PeerMatch[],
  ports: readonly number[],
): Promise<() => Promise<void>> {
  await proxy.listen();
  return announceProxy({
    cgroupId: target.cgroup.id,
    way: 'inbound',
    address: listener.ipv6 ? '::' : '0.0.0.0',
    port: listener.port,
    peers,
    ports: [...ports],
  });
}

export async function applyInboundProxied<C extends Record<string, number>>(
  kind: string,
  target: ResolvedTarget,
  ctx: PacketPathContext,
  scope: { peers: readonly PeerMatch[]; port?: number },
  policy: ProxyPolicy<C>,
  warn: (line: string) => void = console.warn,
): Promise<AppliedProxied<ProxyCounters & InboundCounters>> {
  const netns = await sandboxOf(ctx.docker, target.id, target.pid);
  if (!netns) {
    throw new ChaosSpecError(`chaos.inject(${kind})`, [
      { field: 'target', value: target.name, expected: 'a running container with its own network namespace (Docker SandboxKey)' },
    ]);
  }
  if (keptRulesAvailable() && scope.peers.filter((p) => p.family !== 0).length <= ctx.kernel.constant('VC_QM_PEERS')) {
    try {
      return await inboundByKeptRules(kind, target, ctx, netns, scope, policy, warn);
    } catch (err) {
      const why = keptRulesFailure();
      if (!why) throw err;
      warn(`vitest-chaos: inbound proxies could not keep their rules here (${why.split('\n')[0]}); a chain per fault instead`);
    }
  }
  const table = await tcpTableOf(target.pid);
  const ports = scope.port !== undefined ? [scope.port] : table.listening;
  const unreached = connectionsInScope(table, { connections: 'inbound', peers: scope.peers, port: scope.port }).length;
  const extra: InboundCounters = { inboundPorts: ports.length, inboundConnections: 0, inboundConnectionsUnreached: unreached };
  if (unreached > 0) warn(unreachedWarning(kind, target, unreached));
  const empty = (): ProxyCounters & InboundCounters => ({
    connections: 0,
    unknownConnections: 0,
    upstreamErrors: 0,
    bytesUp: 0,
    bytesDown: 0,
    ...extra,
  });
  if (ports.length === 0) return { stats: empty, revert: async () => undefined, finished: Promise.resolve() };

  const listener = listenInNetns(netns);
  const sources = redirectSources(scope.peers, hasIpv6(target.pid));
  if (sources[6] && !listener.ipv6) {
    closeSync(listener.fd);
    if (scope.peers.every((p) => p.family === 6)) {
      throw noIpv6Peer(kind, target, scope.peers);
    }
    delete sources[6];
  }
  const proxy = relayingProxy(netns, listener.fd, extra, policy);
  let redirect: InstalledRedirect;
  let unannounce = async () => {};
  try {
    unannounce = await listenAnnounced(proxy, target, { ipv6: listener.ipv6, port: listener.port }, scope.peers, ports);
    redirect = await installRedirectRules(
      {
        containerId: target.id,
        netns,
        listenerPort: listener.port,
        ports,
        sources,
        description: `${kind} on ${target.name}: inbound connections to ${ports.join(',')} through our listener (port ${listener.port})`,
      },
      ctx.journal(),
    );
  } catch (err) {
    await unannounce();
    await proxy.close();
    throw err;
  }
  // Once the last relayed connection ended: the (empty) chain goes, and the registry
  // (packet-path faults following the relayed connections) is left.
  const finished = proxy.finished.then(async () => {
    await redirect.remove().catch(() => undefined); // the journal's reaper deletes it otherwise
    await unannounce();
  });
  let reverted = false;
  return {
    stats: () => ({ ...proxy.counters, ...extra }),
    finished,
    async revert() {
      if (reverted) return;
      reverted = true;
      // New connections go straight to the server first; then the relayed ones are handed back
      // (conntrack keeps their REDIRECT while the chain stays, empty: they still reach our
      // sockets, which relay them as they are, until they close).
      try {
        await redirect.disarm();
      } finally {
        policy.release?.();
        await proxy.release();
      }
      if (proxy.idle) await finished; // nothing handed back: the chain goes before revert returns
    },
  };
}

const unreachedWarning = (kind: string, target: ResolvedTarget, n: number) =>
  `vitest-chaos: ${kind} on ${target.name}: ${n} connection(s) the target accepted before the inject ` +
  '(keep-alive, pooled) are not reached; only new ones are (stats.inboundConnectionsUnreached)';

/**
 * The fast way: a redirect slot of the netns's kept rules (targets/queue-slots.ts)
 * with its kept listener, lent to this fault's proxy; the fault goes in force by
 * filling the slot (the target's ports, the peers) and out by clearing it. The
 * connections the target accepted before are counted (and warned about) once the
 * fault is in force: that needs the TCP table, which takes milliseconds (the
 * kernel walks the host's whole connection hash). A connection the target made
 * to its own address before is not counted (it looks like one of our relays).
 */
async function inboundByKeptRules<C extends Record<string, number>>(
  kind: string,
  target: ResolvedTarget,
  ctx: PacketPathContext,
  netns: string,
  scope: { peers: readonly PeerMatch[]; port?: number },
  policy: ProxyPolicy<C>,
  warn: (line: string) => void,
): Promise<AppliedProxied<ProxyCounters & InboundCounters>> {
  const qm = ctx.kernel.queueMatch;
  const ports = scope.port !== undefined ? [scope.port] : targetListeningPorts({ containerId: target.id, netns });
  const extra: InboundCounters = { inboundPorts: ports.length, inboundConnections: 0, inboundConnectionsUnreached: 0 };
  if (ports.length === 0) {
    const stats = () => ({ connections: 0, unknownConnections: 0, upstreamErrors: 0, bytesUp: 0, bytesDown: 0, ...extra });
    return { stats, revert: async () => undefined, finished: Promise.resolve() };
  }
  const slot = await leaseRedirectSlot(ctx.kernel, { containerId: target.id, netns }, ctx.journal());
  if (!slot.ipv6 && scope.peers.length > 0 && scope.peers.every((p) => p.family === 6)) {
    slot.release(Promise.resolve());
    throw noIpv6Peer(kind, target, scope.peers);
  }
  const me: Stacked = { port: slot.port, peers: scope.peers, ports };
  const proxy = relayingProxy(netns, slot.listenerFd(), extra, policy, me);
  let unannounce = async () => {};
  try {
    unannounce = await listenAnnounced(proxy, target, { ipv6: slot.ipv6, port: slot.port }, scope.peers, ports);
    if (scope.port === undefined) qm.listening(slot.index, ports);
    slot.activate({
      inbound: true,
      outbound: null,
      bothHooks: false,
      finOnly: false,
      redirect: true,
      ...(scope.port !== undefined ? { port: scope.port } : {}),
      peers: scope.peers,
    });
    stacks.set(netns, [me, ...(stacks.get(netns) ?? [])]);
  } catch (err) {
    slot.deactivate();
    await unannounce();
    await proxy.close();
    slot.release(Promise.resolve());
    throw err;
  }
  // Once the last relayed connection ended, the registry (packet-path faults following them) is left.
  const finished = proxy.finished.then(() => unannounce());
  let reverted = false;
  // Read after the inject, the table also holds the connections our proxy accepted since (on its
  // listener's port) and made to the server (from inside the netns, from the target's own address):
  // those are left out.
  setImmediate(() => {
    if (reverted) return;
    let table: TcpTable;
    try {
      table = targetTcpTable({ containerId: target.id, netns });
    } catch {
      return; // the target is gone: nothing open to count
    }
    const inScope = connectionsInScope(table, { connections: 'inbound', peers: scope.peers, port: scope.port });
    const n = inScope.filter((c) => c.remote !== c.local && ports.includes(c.localPort)).length;
    extra.inboundConnectionsUnreached = n;
    if (n > 0) warn(unreachedWarning(kind, target, n));
  });
  return {
    stats: () => ({ ...proxy.counters, ...extra }),
    finished,
    async revert() {
      if (reverted) return;
      reverted = true;
      // New connections go straight to the server first; then the relayed ones are handed back
      // (the kept nat chain keeps conntrack, so their translation stays: they still reach our
      // sockets, which relay them as they are, until they close).
      slot.deactivate();
      const rest = (stacks.get(netns) ?? []).filter((x) => x !== me);
      if (rest.length) stacks.set(netns, rest);
      else stacks.delete(netns);
      try {
        policy.release?.();
        await proxy.release();
      } finally {
        slot.release(finished);
      }
      if (proxy.idle) await finished;
    },
  };
}
