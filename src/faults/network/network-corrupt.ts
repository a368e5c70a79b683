// network-corrupt: flip one payload byte in a percentage of the target's
// packets, on its host-side veth (TCX). Checksums are left as they are: where
// the sender offloaded its checksum (the default on veths), the receiver's
// stack trusts the packet and the application gets the flipped byte; where
// the checksum was already computed, the receiver drops it (InCsumErrors).
import { z } from 'zod';
import { mapStats } from '../../contracts/applied-fault.js';
import type { FaultKind } from '../fault-kind.js';
import { applyVethAction, packetScope, percent } from '../params.js';

const schema = z.strictObject({
  /** Share of matching packets corrupted (one payload byte flipped), 0-100 (drawn per packet with the fault's seed). Default 100. */
  percent,
  ...packetScope,
});

export type NetworkCorruptParams = z.input<typeof schema>;

export interface NetworkCorruptStats {
  /** Packets the target received that matched. */
  ingressSeen: number;
  /** Of those, corrupted (one payload byte flipped). */
  ingressCorrupted: number;
  /** Packets the target sent that matched. */
  egressSeen: number;
  /** Of those, corrupted (one payload byte flipped). */
  egressCorrupted: number;
  /** Corrupted packets whose checksum was left to offload: the receiver cannot notice. */
  ingressOffloaded: number;
  egressOffloaded: number;
}

export const networkCorrupt: FaultKind<'network-corrupt', typeof schema, NetworkCorruptStats> = {
  kind: 'network-corrupt',
  matched: (s) => s.ingressSeen + s.egressSeen,
  matchedWhat: "packets on the target's veth that fit direction, peer and port",
  schema,
  programs: ['veth'],
  apply: async (p, target, ctx) =>
    mapStats(await applyVethAction('network-corrupt', 'corrupt', p, target, ctx), (s) => ({
      ingressSeen: s.ingressSeen,
      ingressCorrupted: s.ingressHit,
      egressSeen: s.egressSeen,
      egressCorrupted: s.egressHit,
      ingressOffloaded: s.ingressOffloaded,
      egressOffloaded: s.egressOffloaded,
    })),
};
