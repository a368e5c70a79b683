// Installs cgroup_skb rules (one slot per peer address) and sums their counters;
// shared by network-loss and network-partition (mode 'drop').
import type { ContainerRef, ResolvedTarget } from '../targets/resolve-target.js';
import type { SlotRef } from '../kernel/slotted-programs.js';
import type { AppliedFault, FaultContext, FaultStats } from './fault-kind.js';
import { directionBits, IP_PROTOCOL, resolvePeer, type Direction, type Protocol } from './network-scope.js';

export interface PacketRuleSpec {
  direction: Direction;
  peer?: ContainerRef;
  port?: number;
  protocol?: Protocol;
  /** 0-100; 100 drops every matching packet without a draw. */
  percent: number;
}

const U32 = 0x1_0000_0000;

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
  const threshold = Math.min(U32 - 1, Math.round((spec.percent / 100) * U32));
  const refs: SlotRef[] = [];
  const final = new Map<SlotRef, FaultStats>();
  try {
    peers.forEach((p, i) => {
      const ref = nf.acquire(target.cgroup.directory, target.cgroup.id);
      refs.push(ref);
      nf.enable(
        ref,
        { flags, drop_threshold: threshold, peer_addr: p.addr, peer_mask: p.mask, port: spec.port ?? 0, protocol: spec.protocol ? IP_PROTOCOL[spec.protocol] : 0 },
        // Distinct, non-zero PRNG state per slot, all from the fault's seed.
        { rng: BigInt.asUintN(64, BigInt(ctx.seed) * 0x9e3779b97f4a7c15n + BigInt(i + 1)) || 1n },
      );
    });
  } catch (err) {
    for (const r of refs) nf.release(r);
    throw err;
  }
  const read = (ref: SlotRef): FaultStats => {
    const s = final.get(ref) ?? toStats(nf.readStats(ref));
    return s;
  };
  return {
    stats() {
      const sum: FaultStats = { ingressSeen: 0, ingressDropped: 0, egressSeen: 0, egressDropped: 0 };
      for (const r of refs) {
        const s = read(r);
        for (const key of Object.keys(sum)) sum[key] = (sum[key] ?? 0) + (s[key] ?? 0);
      }
      return sum;
    },
    revert() {
      for (const r of refs) {
        const last = nf.release(r);
        if (last) final.set(r, toStats(last));
      }
    },
  };
}

function toStats(s: { ingress_seen: bigint; ingress_dropped: bigint; egress_seen: bigint; egress_dropped: bigint } | null): FaultStats {
  if (!s) return {};
  return {
    ingressSeen: Number(s.ingress_seen),
    ingressDropped: Number(s.ingress_dropped),
    egressSeen: Number(s.egress_seen),
    egressDropped: Number(s.egress_dropped),
  };
}
