// network-latency: the data the target sends on connections it opens arrives
// latencyMs (+/- jitterMs) later. connect4 redirects those connections to the
// proxy on the target's gateway (proxied-fault.ts), whose delay policy holds
// each chunk before passing it on.
import { z } from 'zod';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { delayPolicy } from '../datapath/stream-policies.js';
import type { FaultKind } from './fault-kind.js';
import { applyProxied } from './proxied-fault.js';
import { peer, port } from './network-scope.js';

const ms = (what: string) =>
  z
    .number({ error: what })
    .min(0, { error: what })
    .max(60_000, { error: what });

const schema = z.strictObject({
  latencyMs: ms('a number of milliseconds from 0 to 60000'),
  jitterMs: ms('a number of milliseconds from 0 to 60000').default(0),
  peer: peer.optional(),
  port: port.optional(),
});

export type NetworkLatencyParams = z.input<typeof schema>;

export const networkLatency: FaultKind<z.output<typeof schema>> = {
  kind: 'network-latency',
  schema,
  async apply(p, target, ctx) {
    const rng = xoroshiro128plus(ctx.seed);
    const delayMs =
      p.jitterMs > 0
        ? () => Math.max(0, p.latencyMs + (uniformFloat64(rng) * 2 - 1) * p.jitterMs)
        : () => p.latencyMs;
    return applyProxied('network-latency', target, ctx, p, delayPolicy(delayMs));
  },
};
