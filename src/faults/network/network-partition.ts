// network-partition: cut the target off (from a peer, or from everything).
// action 'drop': packets vanish, callers time out. action 'reject': connections the
// target opens fail at once (connect(2) gets EPERM) and every other packet in the
// direction is dropped, because a cgroup hook cannot answer with a RST.
import { z } from 'zod';
import { applyConnectRules, type ConnectRuleStats } from '../../kernel/connect-rules.js';
import { applyPacketRules, type PacketRuleStats } from '../../kernel/packet-rules.js';
import type { AppliedFault, FaultKind } from '../fault-kind.js';
import { packetScope, protocol, resolvePeer } from '../params.js';

const schema = z
  .strictObject({
    /**
     * `'drop'`: packets vanish, callers time out. `'reject'`: connections the target
     * opens fail at once (EPERM); needs direction `'egress'` or `'both'`. Default `'drop'`.
     * (Named `mode` before `mode` chose among targets; `mode: 'drop' | 'reject'` is still read as this.)
     */
    action: z.enum(['drop', 'reject'], { error: 'one of "drop", "reject"' }).default('drop'),
    ...packetScope,
    /** Only `'tcp'` or only `'udp'` packets. Default: every protocol. */
    protocol: protocol.optional(),
  })
  .superRefine((p, ctx) => {
    if (p.action !== 'reject') return;
    if (p.direction === 'ingress') {
      ctx.addIssue({
        code: 'custom',
        path: ['direction'],
        input: p.direction,
        message: '"egress" or "both" with action "reject" (incoming packets can only be dropped)',
      });
    }
    if (p.protocol === 'udp') {
      ctx.addIssue({
        code: 'custom',
        path: ['protocol'],
        input: p.protocol,
        message: '"tcp" or none with action "reject" (UDP has no connection to refuse: use action "drop")',
      });
    }
  });

export type NetworkPartitionParams = z.input<typeof schema>;
/** Packets seen and dropped; with action 'reject', also the target's connects matched and refused. */
export type NetworkPartitionStats = PacketRuleStats & Partial<ConnectRuleStats>;

export const networkPartition: FaultKind<'network-partition', typeof schema, NetworkPartitionStats> = {
  kind: 'network-partition',
  matched: (s) => s.ingressSeen + s.egressSeen + (s.connectsMatched ?? 0),
  matchedWhat: 'packets or connections of the target that fit direction, peer, port and protocol',
  schema,
  programs: ['packetDrop', 'connect'],
  async apply(p, target, ctx) {
    const peers = await resolvePeer(p.peer, ctx);
    const parts: AppliedFault<object>[] = [];
    try {
      if (p.action === 'reject') {
        parts.push(applyConnectRules(ctx.kernel, target.cgroup, { action: 'reject', peers, port: p.port, tcpOnly: p.protocol === 'tcp' }));
      }
      parts.push(
        applyPacketRules(ctx.kernel, target.cgroup, ctx.seed, {
          direction: p.direction,
          peers,
          port: p.port,
          protocol: p.protocol,
          percent: 100,
        }),
      );
    } catch (err) {
      for (const part of parts) await part.revert();
      throw err;
    }
    return {
      stats: () => Object.assign({}, ...parts.map((x) => x.stats())) as NetworkPartitionStats,
      async revert() {
        for (const part of parts) await part.revert();
      },
    };
  },
};
