// network-reset: connections the target opens are reset (an RST reaches both
// the target and the destination) after afterBytes bytes went through them or
// afterMs after they were opened; percent picks which connections (seeded).
// connect4 redirects them to the proxy on the target's gateway (proxied-fault.ts).
import { z } from 'zod';
import { resetPolicy } from '../datapath/stream-policies.js';
import type { FaultKind } from './fault-kind.js';
import { byteCount, millis, percentOf, seededChance } from './datapath-params.js';
import { applyProxied } from './proxied-fault.js';
import { peer, port } from './network-scope.js';

const ONE_OF = 'exactly one of afterBytes (bytes through the connection, both ways) and afterMs (ms after it opened)';

const schema = z
  .strictObject({
    afterBytes: byteCount().optional(),
    afterMs: millis().optional(),
    percent: percentOf('connections'),
    peer: peer.optional(),
    port: port.optional(),
  })
  .refine((p) => (p.afterBytes === undefined) !== (p.afterMs === undefined), {
    error: ONE_OF,
    path: ['afterBytes'],
  });

export type NetworkResetParams = z.input<typeof schema>;

export const networkReset: FaultKind<z.output<typeof schema>> = {
  kind: 'network-reset',
  schema,
  apply: (p, target, ctx) =>
    applyProxied(
      'network-reset',
      target,
      ctx,
      p,
      resetPolicy({ afterBytes: p.afterBytes, afterMs: p.afterMs, chosen: seededChance(ctx.seed, p.percent) }),
    ),
};
