// network-loss: drop a percentage of the target's packets (cgroup_skb).
import { z } from 'zod';
import type { FaultKind } from './fault-kind.js';
import { applyPacketRules } from './packet-rules.js';
import { packetFault, protocol } from './network-scope.js';

const schema = z.strictObject({
  ...packetFault,
  protocol: protocol.optional(),
});

export type NetworkLossParams = z.input<typeof schema>;

export const networkLoss: FaultKind<z.output<typeof schema>> = {
  kind: 'network-loss',
  schema,
  apply: (p, target, ctx) =>
    applyPacketRules(target, ctx, { direction: p.direction, peer: p.peer, port: p.port, protocol: p.protocol, percent: p.percent }),
};
