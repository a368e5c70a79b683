// Installs a connection-limit (bpf/conn-limit.bpf.c): one slot in the target's
// cgroup (connect4, egress, sockops) holding the limit, and for inbound
// connections the TCX program on each of its host-side veths, shared by the
// faults on that veth (attached with the first, detached with the last).
import type { NativeLink } from './addon.js';
import type { Kernel } from './kernel.js';
import type { CgroupPlace } from './packet-rules.js';
import type { PeerMatch } from './peer-match.js';
import { holdSlots, type HeldSlots } from './slot-rules.js';

/** Peer address/mask pairs a rule holds (a container on up to 4 networks). */
export const CONN_LIMIT_PEERS = 4;

export interface ConnLimitSpec {
  max: number;
  inbound: boolean;
  outbound: boolean;
  hang: boolean;
  /** Empty or [ANY_PEER]: every peer. */
  peers: readonly PeerMatch[];
  port?: number;
  /** The target's host-side veths (needed when inbound). */
  ifindexes: readonly number[];
}

export interface ConnLimitStats {
  /** Connections counted against the limit (opened or accepted while under it). */
  accepted: number;
  /** Connections over the limit: refused at once (mode 'reject') or left hanging (mode 'hang'). */
  rejected: number;
  /** Counted connections still open. */
  current: number;
}

const vethLinks = new Map<number, { link: NativeLink; users: number }>();

export function applyConnLimit(k: Kernel, cgroup: CgroupPlace, spec: ConnLimitSpec): HeldSlots<ConnLimitStats> {
  const cl = k.connLimit;
  const peers = spec.peers.filter((p) => p.mask !== 0);
  if (peers.length > CONN_LIMIT_PEERS)
    throw new Error(`connection-limit: a peer with ${peers.length} addresses (at most ${CONN_LIMIT_PEERS})`);
  const flags =
    (spec.inbound ? k.constant('VC_CLIMIT_INBOUND') : 0) |
    (spec.outbound ? k.constant('VC_CLIMIT_OUTBOUND') : 0) |
    (spec.hang ? k.constant('VC_CLIMIT_HANG') : 0);
  const rule: Record<string, number> = { max: spec.max, flags, port: spec.port ?? 0, npeers: peers.length };
  peers.forEach((p, i) => {
    rule[`peer${i}_addr`] = p.addr;
    rule[`peer${i}_mask`] = p.mask;
  });
  const held = holdSlots(
    cl,
    [{ path: cgroup.directory, id: cgroup.id }],
    (ref) => cl.enable(ref, rule),
    (s) => ({ accepted: Number(s.accepted), rejected: Number(s.rejected), current: Number(s.current) }),
    { accepted: 0, rejected: 0, current: 0 },
  );
  const mine: number[] = [];
  try {
    if (spec.inbound) {
      for (const ifindex of spec.ifindexes) {
        const key = Buffer.alloc(4);
        key.writeUInt32LE(ifindex);
        const id = Buffer.alloc(8);
        id.writeBigUInt64LE(cgroup.id);
        cl.object.mapUpdate('climit_ifaces', key, id);
        const entry = vethLinks.get(ifindex);
        if (entry) entry.users++;
        else vethLinks.set(ifindex, { link: cl.object.attachTcx('vc_climit_tc', ifindex, 'egress'), users: 1 });
        mine.push(ifindex);
      }
    }
  } catch (err) {
    releaseVeths(k, mine);
    held.revert();
    throw err;
  }
  return {
    refs: held.refs,
    stats: () => held.stats(),
    revert() {
      releaseVeths(k, mine.splice(0));
      return held.revert();
    },
  };
}

function releaseVeths(k: Kernel, ifindexes: number[]): void {
  for (const ifindex of ifindexes) {
    const entry = vethLinks.get(ifindex);
    if (!entry) continue;
    if (--entry.users > 0) continue;
    entry.link.destroy();
    vethLinks.delete(ifindex);
    const key = Buffer.alloc(4);
    key.writeUInt32LE(ifindex);
    k.connLimit.object.mapDelete('climit_ifaces', key);
  }
}

/** TCX links alive now (for tests and the leak check). */
export function connLimitVeths(): number[] {
  return [...vethLinks.keys()];
}
