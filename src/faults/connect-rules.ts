// Installs cgroup/connect4 rules (one slot per peer address): reject a
// connection at once, or redirect it to a local proxy.
import type { ContainerRef, ResolvedTarget } from '../targets/resolve-target.js';
import { ipv4ToInt } from '../kernel/kernel.js';
import type { FaultContext } from './fault-kind.js';
import { resolvePeer } from './network-scope.js';
import { holdSlots, type HeldSlots } from './slot-rules.js';

export interface ConnectRuleSpec {
  action: 'reject' | 'redirect';
  peer?: ContainerRef;
  port?: number;
  redirectTo?: { address: string; port: number };
  tcpOnly: boolean;
}

/** The held slots: network-latency and the proxy faults read `refs` to know their own flows. */
export type AppliedConnectRules = HeldSlots;

export async function applyConnectRules(
  target: ResolvedTarget,
  ctx: FaultContext,
  spec: ConnectRuleSpec,
): Promise<AppliedConnectRules> {
  const peers = await resolvePeer(spec.peer, ctx);
  const cp = ctx.kernel.connect;
  const action = ctx.kernel.constant(spec.action === 'reject' ? 'VC_CONN_REJECT' : 'VC_CONN_REDIRECT');
  const places = peers.map((peer) => ({ path: target.cgroup.directory, id: target.cgroup.id, peer }));
  return holdSlots(
    cp,
    places,
    (ref, { peer: p }) =>
      cp.enable(ref, {
        action,
        peer_addr: p.addr,
        peer_mask: p.mask,
        port: spec.port ?? 0,
        redirect_addr: spec.redirectTo ? ipv4ToInt(spec.redirectTo.address) : 0,
        redirect_port: spec.redirectTo?.port ?? 0,
        tcp_only: spec.tcpOnly ? 1 : 0,
      }),
    (s) => ({ connectsMatched: Number(s.matched), connectsRejected: Number(s.rejected), connectsRedirected: Number(s.redirected) }),
    { connectsMatched: 0, connectsRejected: 0, connectsRedirected: 0 },
  );
}
