// network-duplicate: deliver a percentage of the target's packets twice. A
// TCX program on the host-side veth clones the packet onto the same path
// (bpf_clone_redirect): back into the host for what the target sends, out to
// the target again for what it receives.
import { z } from 'zod';
import type { FaultKind } from './fault-kind.js';
import { packetFault } from './network-scope.js';
import { applyVethRules } from './veth-rules.js';

const schema = z.strictObject({
  ...packetFault,
});

export type NetworkDuplicateParams = z.input<typeof schema>;

export const networkDuplicate: FaultKind<z.output<typeof schema>> = {
  kind: 'network-duplicate',
  schema,
  apply: (p, target, ctx) =>
    applyVethRules(target, ctx, { action: 'duplicate', direction: p.direction, peer: p.peer, port: p.port, percent: p.percent }),
};
