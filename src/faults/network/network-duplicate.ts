// network-duplicate: deliver a percentage of the target's packets twice. A
// TCX program on the host-side veth clones the packet onto the same path
// (bpf_clone_redirect): back into the host for what the target sends, out to
// the target again for what it receives.
import { z } from 'zod';
import { mapStats } from '../../contracts/applied-fault.js';
import type { FaultKind } from '../fault-kind.js';
import { applyVethAction, packetScope, percent } from '../params.js';

const schema = z.strictObject({
  /** Share of matching packets sent twice, 0-100 (drawn per packet with the fault's seed). Default 100. */
  percent,
  ...packetScope,
});

export type NetworkDuplicateParams = z.input<typeof schema>;

export interface NetworkDuplicateStats {
  /** Packets the target received that matched. */
  ingressSeen: number;
  /** Of those, sent twice. */
  ingressDuplicated: number;
  /** Packets the target sent that matched. */
  egressSeen: number;
  /** Of those, sent twice. */
  egressDuplicated: number;
}

export const networkDuplicate: FaultKind<'network-duplicate', typeof schema, NetworkDuplicateStats> = {
  kind: 'network-duplicate',
  matched: (s) => s.ingressSeen + s.egressSeen,
  matchedWhat: "packets on the target's veth that fit direction, peer and port",
  schema,
  programs: ['veth'],
  apply: async (p, target, ctx) =>
    mapStats(await applyVethAction('network-duplicate', 'duplicate', p, target, ctx), (s) => ({
      ingressSeen: s.ingressSeen,
      ingressDuplicated: s.ingressHit,
      egressSeen: s.egressSeen,
      egressDuplicated: s.egressHit,
    })),
};
