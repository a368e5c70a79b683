// The wiring every data-path fault shares: a TcpProxy with the fault's policy
// on the target's gateway, and connect4 rules sending the target's TCP
// connections (to peer / port) there. Nothing here outlives our process: the
// links and the proxy die with it, so there is nothing to journal.
import { ChaosSpecError } from '../api/errors.js';
import { TcpProxy } from '../datapath/tcp-proxy.js';
import type { ProxyPolicy } from '../datapath/stream-policies.js';
import type { ContainerRef, ResolvedTarget } from '../targets/resolve-target.js';
import { applyConnectRules } from './connect-rules.js';
import type { AppliedFault, FaultContext } from './fault-kind.js';

export interface ProxiedScope {
  peer?: ContainerRef;
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

export async function applyProxied(
  kind: string,
  target: ResolvedTarget,
  ctx: FaultContext,
  scope: ProxiedScope,
  policy: ProxyPolicy,
): Promise<AppliedFault> {
  const host = gatewayOf(kind, target);
  let slots: ReadonlySet<number> = new Set();
  const proxy: TcpProxy = new TcpProxy({
    host,
    lookup: (addr, clientPort) => {
      const flow = ctx.kernel.lookupFlow(addr, clientPort);
      // Only flows our own slots redirected; anything else is not ours to carry.
      if (!flow || flow.cgroupId !== target.cgroup.id || !slots.has(flow.slot)) return null;
      return { address: flow.address, port: flow.port };
    },
    open: (relay) => policy.open(relay, proxy),
  });
  const listening = await proxy.listen();
  let rules;
  try {
    rules = await applyConnectRules(target, ctx, {
      action: 'redirect',
      peer: scope.peer,
      port: scope.port,
      redirectTo: listening,
      tcpOnly: true,
    });
  } catch (err) {
    await proxy.close();
    await policy.close?.();
    throw err;
  }
  slots = new Set(rules.refs.map((r) => r.slot));
  return {
    stats: () => ({ ...rules.stats(), ...proxy.counters, ...policy.counters }),
    async revert() {
      // Stop redirecting first, then drop the connections still in the proxy.
      await rules.revert();
      await proxy.close();
      await policy.close?.();
    },
  };
}
