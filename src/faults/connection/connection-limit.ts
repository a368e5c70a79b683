// connection-limit: at most `max` TCP connections of the target at once, counted
// over those it accepts and/or opens (`connections`), optionally only with a
// peer and/or on a port. The connection over the limit fails at once (action
// 'reject': the target's own connect() gets EPERM, a client connecting to the
// target gets a RST, i.e. ECONNREFUSED) or hangs (action 'hang': its SYN is
// dropped, the client waits for its connect timeout). Connections the target
// has open when the fault starts count too (found with ss in its network
// namespace). All in eBPF (bpf/conn-limit.bpf.c).
import { z } from 'zod';
import { ChaosSpecError } from '../../contracts/errors.js';
import { applyConnLimit, CONN_LIMIT_PEERS, type ConnLimitStats } from '../../kernel/conn-limit-rules.js';
import type { FaultKind } from '../fault-kind.js';
import { openConnections } from '../../targets/target-sockets.js';
import { connections, hostVethsOf, peer, port, resolvePeer } from '../params.js';

const MAX = 'an integer number of connections from 0 to 65535';

const schema = z.strictObject({
  /** Connections allowed at once (0-65535; 0 refuses every new one). */
  max: z.number({ error: MAX }).int({ error: MAX }).min(0, { error: MAX }).max(65535, { error: MAX }),
  /** `'inbound'`: those the target accepts; `'outbound'`: those it opens; `'all'` (default): both, counted together. */
  connections,
  /** Only connections with this peer (the client for inbound, the destination for outbound): a container, `'container:<id or name>'`, or an IPv4 address / CIDR. Default: every peer. */
  peer: peer.optional(),
  /** Only connections on this port: for inbound the target's own port, for outbound the destination's. Default: every port. */
  port: port.optional(),
  /**
   * `'reject'` (default): the connection over the limit fails at once; `'hang'`: it hangs until
   * its connect timeout. (`mode: 'reject' | 'hang'` is read as this too: `mode` chooses among targets.)
   */
  action: z.enum(['reject', 'hang'], { error: 'one of "reject", "hang"' }).default('reject'),
});

export type ConnectionLimitParams = z.input<typeof schema>;
export type ConnectionLimitStats = ConnLimitStats;

export const connectionLimit: FaultKind<'connection-limit', typeof schema, ConnectionLimitStats> = {
  kind: 'connection-limit',
  schema,
  programs: ['connLimit'],
  matched: (s) => s.accepted + s.rejected,
  matchedWhat: 'connections of the target that fit connections, peer and port',
  async apply(p, target, ctx) {
    // IPv4 only for now (the programs hold IPv4 peers): a container peer's IPv6 addresses are
    // left out, and a peer with nothing but IPv6 is refused rather than widened to every peer.
    const resolved = await resolvePeer(p.peer, ctx);
    const peers = resolved.filter((x) => x.family !== 6);
    if (peers.length === 0) {
      throw new ChaosSpecError('chaos.inject(connection-limit)', [
        {
          field: 'peer',
          value: resolved.map((x) => x.label).join(', '),
          expected: 'a peer with an IPv4 address (IPv6 is not limited yet)',
        },
      ]);
    }
    if (peers.length > CONN_LIMIT_PEERS) {
      throw new ChaosSpecError('chaos.inject(connection-limit)', [
        { field: 'peer', value: peers.map((x) => x.label).join(', '), expected: `a peer with at most ${CONN_LIMIT_PEERS} IPv4 addresses` },
      ]);
    }
    const inbound = p.connections !== 'outbound';
    return applyConnLimit(ctx.kernel, target.cgroup, {
      max: p.max,
      inbound,
      outbound: p.connections !== 'inbound',
      hang: p.action === 'hang',
      peers,
      port: p.port,
      ifindexes: inbound ? hostVethsOf('connection-limit', target) : [],
      openConnections: () =>
        openConnections(target.pid).map((x) => ({
          inbound: x.inbound,
          remoteAddress: x.remoteAddress,
          localPort: x.localPort,
          remotePort: x.remotePort,
          cookie: x.cookie,
        })),
    });
  },
};
