// network-slow-close: on connections the target opens, a close (FIN) from
// either side reaches the other delayMs later; data still flows meanwhile
// (half-close). connect4 redirects the connections to the proxy on the
// target's gateway (proxied-fault.ts).
import { z } from 'zod';
import { slowClosePolicy } from '../datapath/stream-policies.js';
import type { FaultKind } from './fault-kind.js';
import { millis } from './datapath-params.js';
import { applyProxied } from './proxied-fault.js';
import { peer, port } from './network-scope.js';

const schema = z.strictObject({
  delayMs: millis(),
  peer: peer.optional(),
  port: port.optional(),
});

export type NetworkSlowCloseParams = z.input<typeof schema>;

export const networkSlowClose: FaultKind<z.output<typeof schema>> = {
  kind: 'network-slow-close',
  schema,
  apply: (p, target, ctx) => applyProxied('network-slow-close', target, ctx, p, slowClosePolicy(p.delayMs)),
};
