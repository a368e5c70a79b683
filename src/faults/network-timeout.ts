// network-timeout: connections the target opens stall. After afterBytes bytes
// (both ways together; default 0: at once) whatever either side sends is
// accepted and dropped, so the target waits for an answer that never comes;
// with closeAfterMs both sides then get a FIN. connect4 redirects the
// connections to the proxy on the target's gateway (proxied-fault.ts).
import { z } from 'zod';
import { stallPolicy } from '../datapath/stream-policies.js';
import type { FaultKind } from './fault-kind.js';
import { byteCount, millis } from './datapath-params.js';
import { applyProxied } from './proxied-fault.js';
import { peer, port } from './network-scope.js';

const schema = z.strictObject({
  afterBytes: byteCount().default(0),
  closeAfterMs: millis().optional(),
  peer: peer.optional(),
  port: port.optional(),
});

export type NetworkTimeoutParams = z.input<typeof schema>;

export const networkTimeout: FaultKind<z.output<typeof schema>> = {
  kind: 'network-timeout',
  schema,
  apply: (p, target, ctx) =>
    applyProxied(
      'network-timeout',
      target,
      ctx,
      p,
      stallPolicy({ afterBytes: p.afterBytes, closeAfterMs: p.closeAfterMs }),
    ),
};
