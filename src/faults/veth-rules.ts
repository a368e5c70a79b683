// Installs TCX rules on a target's host-side veths (one slot per veth and peer
// address) and sums their counters; shared by network-corrupt and network-duplicate.
import { ChaosSpecError } from '../api/errors.js';
import { containerVeths } from '../targets/host-veth.js';
import type { ContainerRef, ResolvedTarget } from '../targets/resolve-target.js';
import type { AppliedFault, FaultContext } from './fault-kind.js';
import { drawThreshold, holdSlots, slotRng } from './slot-rules.js';
import { directionBits, resolvePeer, type Direction } from './network-scope.js';

export interface VethRuleSpec {
  action: 'corrupt' | 'duplicate';
  direction: Direction;
  peer?: ContainerRef;
  port?: number;
  /** 0-100; 100 acts on every matching packet without a draw. */
  percent: number;
}


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
  const threshold = drawThreshold(spec.percent);
  const places = veths.flatMap((veth) =>
    peers.map((peer) => ({ path: String(veth.hostIfindex), id: BigInt(veth.hostIfindex), peer })),
  );
  const hit = spec.action === 'corrupt' ? 'Corrupted' : 'Duplicated';
  const corrupt = spec.action === 'corrupt';
  return holdSlots(
    v,
    places,
    (ref, { peer: p }, n) =>
      v.enable(
        ref,
        { flags, threshold, peer_addr: p.addr, peer_mask: p.mask, port: spec.port ?? 0, protocol: 0 },
        { rng: slotRng(ctx.seed, n) },
      ),
    (s) => ({
      ingressSeen: Number(s.ingress_seen),
      [`ingress${hit}`]: Number(s.ingress_hit),
      egressSeen: Number(s.egress_seen),
      [`egress${hit}`]: Number(s.egress_hit),
      ...(corrupt ? { ingressOffloaded: Number(s.ingress_offloaded), egressOffloaded: Number(s.egress_offloaded) } : {}),
    }),
    {
      ingressSeen: 0,
      [`ingress${hit}`]: 0,
      egressSeen: 0,
      [`egress${hit}`]: 0,
      ...(corrupt ? { ingressOffloaded: 0, egressOffloaded: 0 } : {}),
    },
  );
}
