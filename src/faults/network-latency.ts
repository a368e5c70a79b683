// network-latency: the data the target sends on connections it opens arrives
// latencyMs (+/- jitterMs) later. connect4 redirects those connections to a
// DelayProxy on the target's gateway; sockops records where each was going.
import { z } from 'zod';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { ChaosSpecError } from '../api/errors.js';
import { DelayProxy } from '../datapath/delay-proxy.js';
import type { FaultKind } from './fault-kind.js';
import { applyConnectRules } from './connect-rules.js';
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
    const net = target.networks.find((n) => n.gateway);
    if (!net) {
      throw new ChaosSpecError('chaos.inject(network-latency)', [
        { field: 'target', value: target.name, expected: 'a container on a bridge network (it has no gateway)' },
      ]);
    }
    const rng = xoroshiro128plus(ctx.seed);
    const delayMs =
      p.jitterMs > 0
        ? () => Math.max(0, p.latencyMs + (uniformFloat64(rng) * 2 - 1) * p.jitterMs)
        : () => p.latencyMs;
    let slots: ReadonlySet<number> = new Set();
    const proxy = new DelayProxy({
      host: net.gateway,
      delayMs,
      lookup: (addr, clientPort) => {
        const flow = ctx.kernel.lookupFlow(addr, clientPort);
        // Only flows our own slots redirected; anything else is not ours to carry.
        if (!flow || flow.cgroupId !== target.cgroup.id || !slots.has(flow.slot)) return null;
        return { address: flow.address, port: flow.port };
      },
    });
    const listening = await proxy.listen();
    let rules;
    try {
      rules = await applyConnectRules(target, ctx, {
        action: 'redirect',
        peer: p.peer,
        port: p.port,
        redirectTo: listening,
        tcpOnly: true,
      });
    } catch (err) {
      await proxy.close();
      throw err;
    }
    slots = new Set(rules.refs.map((r) => r.slot));
    return {
      stats: () => ({ ...rules.stats(), ...proxy.counters }),
      async revert() {
        // Stop redirecting first, then drop the connections still in the proxy.
        await rules.revert();
        await proxy.close();
      },
    };
  },
};
