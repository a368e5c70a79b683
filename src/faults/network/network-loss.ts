// network-loss: drop a share of the target's packets. cgroup_skb programs on
// the target's cgroup see every packet it sends and receives, whoever opened
// the connection; egress drops return NET_XMIT_CN so senders see no error.
import { z } from 'zod';
import { applyPacketRules, type PacketRuleStats } from '../../kernel/packet-rules.js';
import type { FaultKind } from '../fault-kind.js';
import { packetScope, percent, protocol, resolvePeer } from '../params.js';

const schema = z.strictObject({
  /** Share of matching packets dropped, 0-100 (drawn per packet with the fault's seed). Default 100. */
  percent,
  ...packetScope,
  /** Only `'tcp'` or only `'udp'` packets. Default: every protocol. */
  protocol: protocol.optional(),
});

export type NetworkLossParams = z.input<typeof schema>;
/** `ingressDropped` / `egressDropped` of `ingressSeen` / `egressSeen` matching packets. */
export type NetworkLossStats = PacketRuleStats;

export const networkLoss: FaultKind<'network-loss', typeof schema, NetworkLossStats> = {
  kind: 'network-loss',
  matched: (s) => s.ingressSeen + s.egressSeen,
  matchedWhat: 'packets the target sent or received that fit direction, peer, port and protocol',
  schema,
  programs: ['packetDrop'],
  apply: async (p, target, ctx) =>
    applyPacketRules(ctx.kernel, target.cgroup, ctx.seed, {
      direction: p.direction,
      peers: await resolvePeer(p.peer, ctx),
      port: p.port,
      protocol: p.protocol,
      percent: p.percent,
    }),
};
