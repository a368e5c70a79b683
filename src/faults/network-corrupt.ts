// network-corrupt: flip one payload byte in a percentage of the target's
// packets, on its host-side veth (TCX). Checksums are left as they are: where
// the sender offloaded its checksum (the default on veths), the receiver's
// stack trusts the packet and the application gets the flipped byte; where
// the checksum was already computed, the receiver drops it (InCsumErrors).
import { z } from 'zod';
import type { FaultKind } from './fault-kind.js';
import { packetFault } from './network-scope.js';
import { applyVethRules } from './veth-rules.js';

const schema = z.strictObject({
  ...packetFault,
});

export type NetworkCorruptParams = z.input<typeof schema>;

export const networkCorrupt: FaultKind<z.output<typeof schema>> = {
  kind: 'network-corrupt',
  schema,
  apply: (p, target, ctx) =>
    applyVethRules(target, ctx, { action: 'corrupt', direction: p.direction, peer: p.peer, port: p.port, percent: p.percent }),
};
