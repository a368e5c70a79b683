// network-partition: cut the target off (from a peer, or from everything).
// mode 'drop': packets vanish, callers time out. mode 'reject': connections the
// target opens fail at once (connect(2) gets EPERM) and every other packet in the
// direction is dropped, because a cgroup hook cannot answer with a RST.
import { z } from 'zod';
import { ChaosSpecError } from '../api/errors.js';
import type { AppliedFault, FaultKind } from './fault-kind.js';
import { applyConnectRules } from './connect-rules.js';
import { applyPacketRules } from './packet-rules.js';
import { direction, peer, port, protocol } from './network-scope.js';

const schema = z.strictObject({
  mode: z.enum(['drop', 'reject'], { error: 'one of "drop", "reject"' }).default('drop'),
  direction,
  peer: peer.optional(),
  port: port.optional(),
  protocol: protocol.optional(),
});

export type NetworkPartitionParams = z.input<typeof schema>;

export const networkPartition: FaultKind<z.output<typeof schema>> = {
  kind: 'network-partition',
  schema,
  async apply(p, target, ctx) {
    if (p.mode === 'reject' && p.direction === 'ingress') {
      throw new ChaosSpecError('chaos.inject(network-partition)', [
        {
          field: 'direction',
          value: p.direction,
          expected: '"egress" or "both" with mode "reject" (incoming packets can only be dropped)',
        },
      ]);
    }
    if (p.mode === 'reject' && p.protocol === 'udp') {
      throw new ChaosSpecError('chaos.inject(network-partition)', [
        { field: 'protocol', value: p.protocol, expected: '"tcp" or none with mode "reject" (UDP has no connection to refuse: use mode "drop")' },
      ]);
    }
    const parts: AppliedFault[] = [];
    try {
      if (p.mode === 'reject') {
        parts.push(await applyConnectRules(target, ctx, { action: 'reject', peer: p.peer, port: p.port, tcpOnly: p.protocol === 'tcp' }));
      }
      parts.push(await applyPacketRules(target, ctx, { direction: p.direction, peer: p.peer, port: p.port, protocol: p.protocol, percent: 100 }));
    } catch (err) {
      for (const part of parts) await part.revert();
      throw err;
    }
    return {
      stats: () => Object.assign({}, ...parts.map((x) => x.stats())),
      async revert() {
        for (const part of parts) await part.revert();
      },
    };
  },
};
