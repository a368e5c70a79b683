// A proxied fault on the connections the target ACCEPTS (the test process
// through a mapped port, other containers, the host). A NAT REDIRECT in the
// target's netns (targets/queue-rules.ts) sends new connections to its ports
// to a listener of ours opened inside that netns (kernel/netns-socket.ts);
// the fault's policy relays each one to the target's own server, connecting
// from inside the netns (locally generated packets do not pass PREROUTING, so
// they are not redirected again). Connections accepted before the inject keep
// going straight to the server: NAT decides on a connection's first packet;
// they are counted and warned about. Revert removes the rule first.
import net from 'node:net';
import { ChaosSpecError } from '../contracts/errors.js';
import type { AppliedFault } from '../contracts/applied-fault.js';
import { intToIpv4 } from '../kernel/kernel.js';
import { connectInNetns, listenInNetns, originalDestination } from '../kernel/netns-socket.js';
import type { PeerMatch } from '../kernel/peer-match.js';
import { installRedirectRules, sandboxOf } from '../targets/queue-rules.js';
import type { ResolvedTarget } from '../targets/resolve-target.js';
import { tcpTableOf } from '../targets/tcp-table.js';
import { connectionsInScope, type PacketPathContext } from './packet-path.js';
import type { Route } from './proxy-chain.js';
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

function cidrOf(p: PeerMatch): string | null {
  if (p.mask === 0) return null;
  let bits = 0;
  for (let m = p.mask >>> 0; m; m = (m << 1) >>> 0) bits++;
  return `${intToIpv4(p.addr)}/${bits}`;
}

export async function applyInboundProxied<C extends Record<string, number>>(
  kind: string,
  target: ResolvedTarget,
  ctx: PacketPathContext,
  scope: { peers: readonly PeerMatch[]; port?: number },
  policy: ProxyPolicy<C>,
  warn: (line: string) => void = console.warn,
): Promise<AppliedFault<ProxyCounters & InboundCounters>> {
  const netns = await sandboxOf(ctx.docker, target.id, target.pid);
  if (!netns) {
    throw new ChaosSpecError(`chaos.inject(${kind})`, [
      { field: 'target', value: target.name, expected: 'a running container with its own network namespace (Docker SandboxKey)' },
    ]);
  }
  const table = tcpTableOf(target.pid);
  const ports = scope.port !== undefined ? [scope.port] : table.listening;
  const unreached = connectionsInScope(table, { connections: 'inbound', peers: scope.peers, port: scope.port }).length;
  const extra: InboundCounters = { inboundPorts: ports.length, inboundConnections: 0, inboundConnectionsUnreached: unreached };
  if (unreached > 0) {
    warn(
      `vitest-chaos: ${kind} on ${target.name}: ${unreached} connection(s) the target accepted before the inject ` +
        '(keep-alive, pooled) are not reached; only new ones are (stats.inboundConnectionsUnreached)',
    );
  }
  const empty = (): ProxyCounters & InboundCounters => ({
    connections: 0,
    unknownConnections: 0,
    upstreamErrors: 0,
    bytesUp: 0,
    bytesDown: 0,
    ...extra,
  });
  if (ports.length === 0) return { stats: empty, revert: async () => undefined };

  const listener = listenInNetns(netns);
  const proxy: TcpProxy = new TcpProxy({
    host: '',
    listenFd: listener.fd,
    lookup: (_addr, _port, client): Route | null => {
      const fd = (client as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (fd === undefined || fd < 0) return null;
      const dst = originalDestination(fd);
      extra.inboundConnections++;
      return {
        dst,
        hops: 0,
        connect({ allowHalfOpen }) {
          const s = new net.Socket({ fd: connectInNetns(netns, dst.address, dst.port), allowHalfOpen, readable: true, writable: true });
          s.setNoDelay(true);
          return s;
        },
      };
    },
    open: (relay) => policy.open(relay, proxy),
  });
  let remove: () => Promise<void>;
  let unannounce = async () => {};
  try {
    await proxy.listen();
    // Packet-path faults of the target (latency...) follow the relayed connections, before any is redirected.
    unannounce = await announceProxy({
      cgroupId: target.cgroup.id,
      way: 'inbound',
      address: '0.0.0.0',
      port: listener.port,
      peers: scope.peers,
      ports,
    });
    const sources = scope.peers.map(cidrOf);
    remove = await installRedirectRules(
      {
        containerId: target.id,
        netns,
        listenerPort: listener.port,
        ports,
        sources: sources.includes(null) ? [] : (sources as string[]),
        description: `${kind} on ${target.name}: inbound connections to ${ports.join(',')} through our listener (port ${listener.port})`,
      },
      ctx.journal(),
    );
  } catch (err) {
    await unannounce();
    await proxy.close();
    throw err;
  }
  return {
    stats: () => ({ ...proxy.counters, ...extra }),
    async revert() {
      // New connections go straight to the server first; then the relayed ones are closed.
      try {
        await remove();
      } finally {
        await proxy.close();
        await unannounce();
      }
    },
  };
}
