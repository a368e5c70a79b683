// The wiring every data-path fault shares: a TcpProxy with the fault's policy
// on the target's gateway, and connect4 rules sending the target's TCP
// connections (to peer / port) there. Nothing here outlives our process: the
// links and the proxy die with it, so there is nothing to journal.
import { ChaosSpecError } from '../contracts/errors.js';
import { chainAfter, joinChain, routeThrough } from './proxy-chain.js';
import { TcpProxy } from './tcp-proxy.js';
import { announceProxy } from './proxy-registry.js';
import type { ProxyPolicy } from './proxy-policy.js';
import { applyConnectRules, type AppliedConnectRules, type ConnectRuleStats } from '../kernel/connect-rules.js';
import type { ProxyCounters } from './tcp-proxy.js';
import type { Journal } from '../journal/journal.js';
import type { Kernel } from '../kernel/kernel.js';
import type { PeerMatch } from '../kernel/peer-match.js';
import type { ResolvedTarget } from '../targets/resolve-target.js';
import type { AppliedFault } from '../contracts/applied-fault.js';

/** What the data path needs of a fault's context. */
export interface DatapathContext {
  kernel: Kernel;
  journal(): Journal;
}

export interface ProxiedScope {
  peers: readonly PeerMatch[];
  port?: number;
}

/** The target's bridge gateway (where our listeners go), or a ChaosSpecError. */
export function gatewayOf(kind: string, target: ResolvedTarget): string {
  const net = target.networks.find((n) => n.gateway);
  if (!net) {
    throw new ChaosSpecError(`chaos.inject(${kind})`, [
      { field: 'target', value: target.name, expected: 'a container on a bridge network (it has no gateway)' },
    ]);
  }
  return net.gateway;
}

/** What every proxied fault counts: the kernel's redirects, the proxy's relays, the policy's own. */
export type ProxiedStats<C> = ConnectRuleStats & ProxyCounters & C;

/** A proxied fault; `finished` resolves once, after revert, its proxy carries no connection any more. */
export interface AppliedProxied<S extends object> extends AppliedFault<S> {
  readonly finished: Promise<void>;
}

/**
 * Revert hands the connections back: the redirect stops first, then the proxy
 * is released (its policy lets go of what it holds, the relays go on plainly
 * until either side closes). The proxy leaves the registry (packet-path faults
 * following it) when its last connection has ended, and the policy is closed
 * then unless `sharedPolicy` (the caller closes it: http's two proxies share one).
 */
export async function applyProxied<C extends Record<string, number>>(
  kind: string,
  target: ResolvedTarget,
  ctx: DatapathContext,
  scope: ProxiedScope,
  policy: ProxyPolicy<C>,
  opts: { sharedPolicy?: boolean } = {},
): Promise<AppliedProxied<ProxiedStats<C>>> {
  const host = gatewayOf(kind, target);
  const rank = policy.layer === 'http' ? 1 : 0;
  let slots: ReadonlySet<number> = new Set();
  const host6 = target.networks.find((n) => n.gateway6)?.gateway6;
  const proxy: TcpProxy = new TcpProxy({
    host,
    ...(host6 ? { host6 } : {}),
    lookup: (addr, clientPort) => {
      const flow = ctx.kernel.lookupFlow(addr, clientPort);
      // Only flows our own slots redirected; anything else is not ours to carry.
      if (!flow || flow.cgroupId !== target.cgroup.id || !slots.has(flow.slot)) return null;
      const dst = { address: flow.address, port: flow.port };
      return routeThrough(dst, chainAfter(flow.cgroupId, flow.slots, flow.slot));
    },
    open: (relay) => policy.open(relay, proxy),
  });
  const listening = await proxy.listen();
  // Packet-path faults of the target (latency) follow what is redirected here, before anything is.
  const unannounce = await announceProxy({
    cgroupId: target.cgroup.id,
    way: 'outbound',
    address: listening.address,
    ...(listening.address6 ? { address6: listening.address6 } : {}),
    port: listening.port,
    peers: scope.peers,
    destPort: scope.port,
    carried: () => proxy.carried(),
  });
  let rules: AppliedConnectRules;
  try {
    rules = applyConnectRules(ctx.kernel, target.cgroup, {
      action: 'redirect',
      peers: scope.peers,
      port: scope.port,
      redirectTo: { address: listening.address, port: listening.port },
      ...(listening.address6 ? { redirectTo6: listening.address6 } : {}),
      tcpOnly: true,
      rank,
    });
  } catch (err) {
    await unannounce();
    await proxy.close();
    await policy.close?.();
    throw err;
  }
  slots = new Set(rules.refs.map((r) => r.slot));
  const leave = rules.refs.map((r) =>
    joinChain({ cgroupId: r.cgroupId, slot: r.slot, rank, hop: { address: listening.address, port: listening.hopPort } }),
  );
  const finished = proxy.finished.then(async () => {
    await unannounce();
    if (!opts.sharedPolicy) await policy.close?.();
  });
  let reverted = false;
  return {
    stats: () => ({ ...rules.stats(), ...proxy.counters, ...policy.counters }),
    finished,
    async revert() {
      if (reverted) return;
      reverted = true;
      // Stop redirecting first, then hand the connections still in the proxy back.
      for (const l of leave) l();
      try {
        await rules.revert();
      } finally {
        policy.release?.();
        await proxy.release();
      }
      if (proxy.idle) await finished; // nothing handed back: all gone before revert returns
    },
  };
}
