// Installs cgroup/connect4 and connect6 rules (one slot per peer address):
// reject a connection at once, or redirect it to a local proxy.
import { ipv4ToInt, type Kernel } from './kernel.js';
import type { CgroupPlace } from './packet-rules.js';
import { ipv6Bytes, type PeerMatch } from './peer-match.js';
import { holdSlots, type HeldSlots } from './slot-rules.js';

export interface ConnectRuleSpec {
  action: 'reject' | 'redirect';
  peers: readonly PeerMatch[];
  port?: number;
  redirectTo?: { address: string; port: number };
  /** Where IPv6 connections go (the same port as redirectTo); without it they are not redirected. */
  redirectTo6?: string;
  tcpOnly: boolean;
  /** Of several matching redirects, the lowest rank's proxy gets the connection first. */
  rank?: number;
}

/** The held slots: network-latency and the proxy faults read `refs` to know their own flows. */
export type AppliedConnectRules = HeldSlots<ConnectRuleStats>;

/** What the connect4 program counted for a fault's slots. */
export interface ConnectRuleStats {
  /** connect() calls of the target that matched the rule. */
  connectsMatched: number;
  /** Of those, refused (mode 'reject'). */
  connectsRejected: number;
  /** Of those, sent to our proxy. */
  connectsRedirected: number;
}

const ZERO16 = Buffer.alloc(16);

export function applyConnectRules(k: Kernel, cgroup: CgroupPlace, spec: ConnectRuleSpec): AppliedConnectRules {
  const cp = k.connect;
  const action = k.constant(spec.action === 'reject' ? 'VC_CONN_REJECT' : 'VC_CONN_REDIRECT');
  const places = spec.peers.map((peer) => ({ path: cgroup.directory, id: cgroup.id, peer }));
  return holdSlots(
    cp,
    places,
    (ref, { peer: p }) =>
      cp.enable(ref, {
        action,
        family: p.family,
        peer_addr: p.addr,
        peer_mask: p.mask,
        peer_addr6: p.addr6 ?? ZERO16,
        peer_mask6: p.mask6 ?? ZERO16,
        redirect_addr6: spec.redirectTo6 ? (ipv6Bytes(spec.redirectTo6) ?? ZERO16) : ZERO16,
        port: spec.port ?? 0,
        redirect_addr: spec.redirectTo ? ipv4ToInt(spec.redirectTo.address) : 0,
        redirect_port: spec.redirectTo?.port ?? 0,
        tcp_only: spec.tcpOnly ? 1 : 0,
        rank: spec.rank ?? 0,
      }),
    (s) => ({ connectsMatched: Number(s.matched), connectsRejected: Number(s.rejected), connectsRedirected: Number(s.redirected) }),
    { connectsMatched: 0, connectsRejected: 0, connectsRedirected: 0 },
  );
}
