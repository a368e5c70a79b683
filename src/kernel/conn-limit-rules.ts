// Installs a connection-limit (bpf/conn-limit.bpf.c): one slot in the target's
// cgroup (connect4, egress, sockops) holding the limit, and for inbound
// connections the TCX program on each of its host-side veths, shared by the
// faults on that veth (attached with the first, detached with the last).
import type { NativeLink } from './addon.js';
import { ipv4ToInt, type Kernel } from './kernel.js';
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
  /**
   * Lists the target's open connections at inject: those that match count against the
   * limit until they close. (One that closes in the few ms between the listing and the
   * slot going live stays counted until revert.)
   */
  openConnections?: () => readonly ExistingConnection[];
}

/** A connection the target had open when the fault started: counted if it matches. */
export interface ExistingConnection {
  inbound: boolean;
  remoteAddress: string;
  localPort: number;
  remotePort: number;
  cookie: bigint;
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
let closeLink: { link: NativeLink; users: number } | undefined;

function matches(spec: ConnLimitSpec, peers: readonly PeerMatch[], c: ExistingConnection): boolean {
  if (c.inbound ? !spec.inbound : !spec.outbound) return false;
  const port = c.inbound ? c.localPort : c.remotePort;
  if (spec.port !== undefined && spec.port !== port) return false;
  if (peers.length === 0) return true;
  let addr: number;
  try {
    addr = ipv4ToInt(c.remoteAddress);
  } catch {
    return false;
  }
  return peers.some((p) => (addr & p.mask) >>> 0 === p.addr);
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

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
  // The close tracepoint first: a connection counted from here on is uncounted when it closes.
  if (closeLink) closeLink.users++;
  else closeLink = { link: cl.object.attach('vc_climit_close'), users: 1 };
  let existing: ExistingConnection[] = [];
  let held: HeldSlots<ConnLimitStats>;
  try {
    held = holdSlots(
      cl,
      [{ path: cgroup.directory, id: cgroup.id }],
      (ref) => {
        // Connections already open count against the limit: marked before the slot is
        // visible, so the programs' counter starts from their number.
        existing = (spec.openConnections?.() ?? []).filter((x) => matches(spec, peers, x));
        const bit = 1 << ref.slot;
        for (const x of existing) {
          const had = cl.object.mapLookup('climit_socks', u64(x.cookie));
          const v = Buffer.alloc(4);
          v.writeUInt32LE(((had?.readUInt32LE(0) ?? 0) | bit) >>> 0);
          cl.object.mapUpdate('climit_socks', u64(x.cookie), v);
        }
        cl.enable(ref, rule, { current: BigInt(existing.length) });
      },
      (s) => ({ accepted: Number(s.accepted), rejected: Number(s.rejected), current: Number(s.current) }),
      { accepted: 0, rejected: 0, current: 0 },
    );
  } catch (err) {
    releaseClose();
    throw err;
  }
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
    releaseClose();
    throw err;
  }
  let reverted = false;
  return {
    refs: held.refs,
    stats: () => held.stats(),
    revert() {
      if (reverted) return;
      reverted = true;
      releaseVeths(k, mine.splice(0));
      held.revert();
      releaseClose();
    },
  };
}

function releaseClose(): void {
  if (!closeLink || --closeLink.users > 0) return;
  closeLink.link.destroy();
  closeLink = undefined;
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
