// Installs TCX rules on a target's host-side veths (one slot per veth and peer
// address) and sums their counters; shared by network-corrupt and network-duplicate.
import type { AppliedFault } from '../contracts/applied-fault.js';
import type { Kernel } from './kernel.js';
import { directionBits, peerRuleBytes, type Direction, type PeerMatch } from './peer-match.js';
import { drawThreshold, holdSlots, slotRng } from './slot-rules.js';

export interface VethRuleSpec {
  action: 'corrupt' | 'duplicate';
  direction: Direction;
  peers: readonly PeerMatch[];
  port?: number;
  /** 0-100; 100 acts on every matching packet without a draw. */
  percent: number;
}

/** `hostIfindexes`: the target's host-side veths (at least one). */
/** What the TCX programs counted for a fault's slots (the kinds name `hit` after their action). */
export interface VethRuleStats {
  ingressSeen: number;
  ingressHit: number;
  /** Hit packets whose checksum the sender left to offload (corruption goes unnoticed). */
  ingressOffloaded: number;
  egressSeen: number;
  egressHit: number;
  egressOffloaded: number;
}

export function applyVethRules(k: Kernel, hostIfindexes: readonly number[], seed: number, spec: VethRuleSpec): AppliedFault<VethRuleStats> {
  const v = k.veth;
  const dirBits = directionBits(spec.direction, {
    ingress: k.constant('VC_PKT_INGRESS'),
    egress: k.constant('VC_PKT_EGRESS'),
  });
  const action = k.constant(spec.action === 'corrupt' ? 'VC_PKT_CORRUPT' : 'VC_PKT_DUPLICATE');
  const flags = dirBits | action | (spec.percent >= 100 ? k.constant('VC_PKT_ALL') : 0);
  const threshold = drawThreshold(spec.percent);
  const places = hostIfindexes.flatMap((ifindex) => spec.peers.map((peer) => ({ path: String(ifindex), id: BigInt(ifindex), peer })));
  return holdSlots(
    v,
    places,
    (ref, { peer: p }, n) =>
      v.enable(
        ref,
        {
          flags,
          threshold,
          family: p.family,
          peer_addr: peerRuleBytes(p).addr,
          peer_mask: peerRuleBytes(p).mask,
          port: spec.port ?? 0,
          protocol: 0,
        },
        { rng: slotRng(seed, n) },
      ),
    (s) => ({
      ingressSeen: Number(s.ingress_seen),
      ingressHit: Number(s.ingress_hit),
      ingressOffloaded: Number(s.ingress_offloaded),
      egressSeen: Number(s.egress_seen),
      egressHit: Number(s.egress_hit),
      egressOffloaded: Number(s.egress_offloaded),
    }),
    { ingressSeen: 0, ingressHit: 0, ingressOffloaded: 0, egressSeen: 0, egressHit: 0, egressOffloaded: 0 },
  );
}
