// Installs cgroup_skb rules (one slot per peer address) and sums their counters;
// shared by network-loss and network-partition (mode 'drop').
import type { ContainerRef, ResolvedTarget } from '../targets/resolve-target.js';
import type { AppliedFault, FaultContext } from './fault-kind.js';
import { drawThreshold, holdSlots, slotRng } from './slot-rules.js';
import { directionBits, IP_PROTOCOL, resolvePeer, type Direction, type Protocol } from './network-scope.js';

export interface PacketRuleSpec {
  direction: Direction;
  peer?: ContainerRef;
  port?: number;
  protocol?: Protocol;
  /** 0-100; 100 drops every matching packet without a draw. */
  percent: number;
}

export async function applyPacketRules(
  target: ResolvedTarget,
  ctx: FaultContext,
  spec: PacketRuleSpec,
): Promise<AppliedFault> {
  const peers = await resolvePeer(spec.peer, ctx);
  const nf = ctx.kernel.netfilter;
  const k = ctx.kernel;
  const dirBits = directionBits(spec.direction, {
    ingress: k.constant('VC_DIR_INGRESS'),
    egress: k.constant('VC_DIR_EGRESS'),
  });
  const flags = dirBits | (spec.percent >= 100 ? k.constant('VC_RULE_DROP_ALL') : 0);
  const threshold = drawThreshold(spec.percent);
  const places = peers.map((peer) => ({ path: target.cgroup.directory, id: target.cgroup.id, peer }));
  return holdSlots(
    nf,
    places,
    (ref, { peer: p }, n) =>
      nf.enable(
        ref,
        { flags, drop_threshold: threshold, peer_addr: p.addr, peer_mask: p.mask, port: spec.port ?? 0, protocol: spec.protocol ? IP_PROTOCOL[spec.protocol] : 0 },
        { rng: slotRng(ctx.seed, n) },
      ),
    (s) => ({
      ingressSeen: Number(s.ingress_seen),
      ingressDropped: Number(s.ingress_dropped),
      egressSeen: Number(s.egress_seen),
      egressDropped: Number(s.egress_dropped),
    }),
    { ingressSeen: 0, ingressDropped: 0, egressSeen: 0, egressDropped: 0 },
  );
}
