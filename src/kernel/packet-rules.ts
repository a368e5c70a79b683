// Installs cgroup_skb rules (one slot per peer address) and sums their counters;
// shared by network-loss and network-partition (mode 'drop').
import type { AppliedFault } from '../contracts/applied-fault.js';
import type { Kernel } from './kernel.js';
import { directionBits, IP_PROTOCOL, peerRuleBytes, type Direction, type PeerMatch, type Protocol } from './peer-match.js';
import { drawThreshold, holdSlots, slotRng } from './slot-rules.js';

/** A container's cgroup v2 directory and id (its inode): where cgroup programs attach. */
export interface CgroupPlace {
  directory: string;
  id: bigint;
}

export interface PacketRuleSpec {
  direction: Direction;
  peers: readonly PeerMatch[];
  port?: number;
  protocol?: Protocol;
  /** 0-100; 100 drops every matching packet without a draw. */
  percent: number;
}

/** What the cgroup_skb programs counted for a fault's slots. */
export interface PacketRuleStats {
  /** Packets the target received that matched the rule. */
  ingressSeen: number;
  /** Of those, dropped. */
  ingressDropped: number;
  /** Packets the target sent that matched the rule. */
  egressSeen: number;
  /** Of those, dropped. */
  egressDropped: number;
}

export function applyPacketRules(k: Kernel, cgroup: CgroupPlace, seed: number, spec: PacketRuleSpec): AppliedFault<PacketRuleStats> {
  const nf = k.packetDrop;
  const dirBits = directionBits(spec.direction, {
    ingress: k.constant('VC_PKT_INGRESS'),
    egress: k.constant('VC_PKT_EGRESS'),
  });
  const flags = dirBits | (spec.percent >= 100 ? k.constant('VC_PKT_ALL') : 0);
  const threshold = drawThreshold(spec.percent);
  const places = spec.peers.map((peer) => ({ path: cgroup.directory, id: cgroup.id, peer }));
  return holdSlots(
    nf,
    places,
    (ref, { peer: p }, n) =>
      nf.enable(
        ref,
        {
          flags,
          threshold,
          family: p.family,
          peer_addr: peerRuleBytes(p).addr,
          peer_mask: peerRuleBytes(p).mask,
          port: spec.port ?? 0,
          protocol: spec.protocol ? IP_PROTOCOL[spec.protocol] : 0,
        },
        { rng: slotRng(seed, n) },
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
