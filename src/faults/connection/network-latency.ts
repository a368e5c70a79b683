// network-latency: what the target sends arrives latencyMs (+/- jitterMs)
// later, as netem on its egress would hold it: a request/response round trip
// gets the latency once, whichever side opened the connection. It works on the
// target's packets (datapath/packet-path.ts): connections it accepts
// (`connections: 'inbound'`), connections it opens ('outbound'), both ('all',
// the default), including those already open when the fault is injected. A new
// connection's handshake gets it once more (the SYN-ACK or the SYN is held).
import { z } from 'zod';
import { applyPacketPath, type PacketPathStats } from '../../datapath/packet-path.js';
import type { FaultKind } from '../fault-kind.js';
import { connectionScope, connections, resolveConnectionScope } from '../params.js';

const MS = 'a number of milliseconds from 0 to 60000';
const ms = () => z.number({ error: MS }).min(0, { error: MS }).max(60_000, { error: MS });

const schema = z.strictObject({
  /** Added to what the target sends, in ms (0-60000). Required. */
  latencyMs: ms(),
  /** Uniform +/- spread around `latencyMs`, in ms (0-60000); order is kept. Default 0. */
  jitterMs: ms().default(0),
  ...connectionScope,
  /** `'inbound'` (connections the target accepts), `'outbound'` (it opens) or `'all'`. Default `'all'`. */
  connections,
});

export type NetworkLatencyParams = z.input<typeof schema>;

/** Connections seen (and open at inject), packets held. */
export type NetworkLatencyStats = PacketPathStats;

export const networkLatency: FaultKind<'network-latency', typeof schema, NetworkLatencyStats> = {
  kind: 'network-latency',
  matched: (s) => s.connectionsMatched,
  matchedWhat: 'connections of the target that fit connections, peer and port',
  schema,
  async apply(p, target, ctx) {
    const scope = await resolveConnectionScope(p, ctx);
    const path = await applyPacketPath('network-latency', target, ctx, {
      queue: { mode: 'delay', delayMs: p.latencyMs, jitterMs: p.jitterMs },
      connections: p.connections,
      peers: scope.peers,
      port: scope.port,
      hooks: 'egress',
      newOutbound: 'packets',
    });
    return { stats: path.stats, revert: path.revert };
  },
};
