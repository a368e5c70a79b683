// Installs TCX rules on a target's host-side veths (one slot per veth and peer
// address) and sums their counters; shared by network-corrupt and network-duplicate.
import { ChaosSpecError } from '../api/errors.js';
import type { SlotRef } from '../kernel/slotted-programs.js';
import { containerVeths } from '../targets/host-veth.js';
import type { ContainerRef, ResolvedTarget } from '../targets/resolve-target.js';
import type { AppliedFault, FaultContext, FaultStats } from './fault-kind.js';
import { directionBits, resolvePeer, type Direction } from './network-scope.js';

export interface VethRuleSpec {
  action: 'corrupt' | 'duplicate';
  direction: Direction;
  peer?: ContainerRef;
  port?: number;
  /** 0-100; 100 acts on every matching packet without a draw. */
  percent: number;
}

const U32 = 0x1_0000_0000;
type Counters = { [K in 'ingress_seen' | 'ingress_hit' | 'ingress_offloaded' | 'egress_seen' | 'egress_hit' | 'egress_offloaded']: bigint };

export async function applyVethRules(target: ResolvedTarget, ctx: FaultContext, spec: VethRuleSpec): Promise<AppliedFault> {
  const kind = `network-${spec.action}`;
  const refuse = (why: string): never => {
    throw new ChaosSpecError(`chaos.inject(${kind})`, [
      { field: 'target', value: target.name, expected: `a container on a bridge network (${why})` },
    ]);
  };
  let veths: ReturnType<typeof containerVeths> = [];
  try {
    veths = containerVeths(target.pid, target.name);
  } catch (err) {
    refuse((err as Error).message);
  }
  if (veths.length === 0) refuse('it has no veth with a peer on the host');
  const peers = await resolvePeer(spec.peer, ctx);
  const v = ctx.kernel.veth;
  const k = ctx.kernel;
  const dirBits = directionBits(spec.direction, {
    ingress: k.constant('VC_VETH_DIR_INGRESS'),
    egress: k.constant('VC_VETH_DIR_EGRESS'),
  });
  const action = k.constant(spec.action === 'corrupt' ? 'VC_VETH_CORRUPT' : 'VC_VETH_DUPLICATE');
  const flags = dirBits | action | (spec.percent >= 100 ? k.constant('VC_VETH_ALL') : 0);
  const threshold = Math.min(U32 - 1, Math.round((spec.percent / 100) * U32));
  const refs: SlotRef[] = [];
  try {
    for (const veth of veths) {
      for (const p of peers) {
        const ref = v.acquire(String(veth.hostIfindex), BigInt(veth.hostIfindex));
        refs.push(ref);
        v.enable(
          ref,
          { flags, threshold, peer_addr: p.addr, peer_mask: p.mask, port: spec.port ?? 0, protocol: 0 },
          // Distinct, non-zero PRNG state per slot, all from the fault's seed.
          { rng: BigInt.asUintN(64, BigInt(ctx.seed) * 0x9e3779b97f4a7c15n + BigInt(refs.length)) || 1n },
        );
      }
    }
  } catch (err) {
    for (const r of refs) v.release(r);
    throw err;
  }
  const final = new Map<SlotRef, Counters | null>();
  const hit = spec.action === 'corrupt' ? 'Corrupted' : 'Duplicated';
  return {
    stats() {
      const sum: FaultStats = { ingressSeen: 0, [`ingress${hit}`]: 0, egressSeen: 0, [`egress${hit}`]: 0 };
      if (spec.action === 'corrupt') Object.assign(sum, { ingressOffloaded: 0, egressOffloaded: 0 });
      for (const r of refs) {
        const s = final.has(r) ? final.get(r) : v.readStats(r);
        if (!s) continue;
        sum.ingressSeen! += Number(s.ingress_seen);
        sum[`ingress${hit}`]! += Number(s.ingress_hit);
        sum.egressSeen! += Number(s.egress_seen);
        sum[`egress${hit}`]! += Number(s.egress_hit);
        if (spec.action === 'corrupt') {
          sum.ingressOffloaded! += Number(s.ingress_offloaded);
          sum.egressOffloaded! += Number(s.egress_offloaded);
        }
      }
      return sum;
    },
    revert() {
      for (const r of refs) if (!final.has(r)) final.set(r, v.release(r));
    },
  };
}
