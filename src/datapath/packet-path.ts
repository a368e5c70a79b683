// The packet data path: what a connection fault does to the target's packets
// themselves, so that it reaches every connection in scope, those the target
// accepts as well as those it opens, and those already open when the fault
// began (pooled database connections, keep-alive agents, Redis clients). The
// target's packets are queued by iptables rules in its network namespace to a
// reader thread of ours (kernel/packet-queue.ts) that holds them (latency, slow
// close, stall), or resets their connection. The rules are kept per netns, one
// per fault slot, matching with an eBPF program that reads the fault's scope
// from maps (targets/queue-slots.ts, bpf/queue-match.bpf.c): inject and revert
// are map updates. Without bpffs, a chain per fault is committed at inject and
// deleted at revert (targets/queue-rules.ts).
// Revert stops the queueing first, then gives back every packet still held:
// no connection is broken by the revert. IPv4 and IPv6 alike: a peer's rules
// go to its family's tables (iptables, ip6tables), no peer's to both.
import { ChaosSpecError } from '../contracts/errors.js';
import type { Journal } from '../journal/journal.js';
import type { Kernel } from '../kernel/kernel.js';
import { openPacketQueue, type PacketQueue, type PacketQueueOptions } from '../kernel/packet-queue.js';
import type { QueueMatchScope } from '../kernel/queue-match.js';
import {
  keptRulesAvailable,
  keptRulesFailure,
  leaseQueueSlot,
  targetListeningPorts,
  targetTcpTable,
  type QueueSlot,
} from '../targets/queue-slots.js';
import { peerCidr, peerCovers, peerCoversAddress, peerFamilies, type PeerMatch } from '../kernel/peer-match.js';
import { installQueueRules, sandboxOf, type InstalledQueueRules, type IpFamily } from '../targets/queue-rules.js';
import { proxiesOf, proxyOverlaps, watchProxies, type ProxyEntry } from './proxy-registry.js';
import type { ResolvedTarget } from '../targets/resolve-target.js';
import { hasIpv6, tcpTableOf, type TcpConnection, type TcpTable } from '../targets/tcp-table.js';
import type Docker from 'dockerode';

export type Connections = 'inbound' | 'outbound' | 'all';

export interface PacketPathContext {
  kernel: Kernel;
  docker: Docker;
  journal(): Journal;
  seed: number;
}

export interface PacketPathSpec {
  queue: Omit<PacketQueueOptions, 'netns' | 'seed' | 'queue'>;
  connections: Connections;
  peers: readonly PeerMatch[];
  /** outbound: the destination port; inbound: the target's own port. */
  port?: number;
  /** 'egress': only what the target sends is queued; 'both': what it receives too. */
  hooks: 'egress' | 'both';
  /** Only packets carrying a FIN (slow close). */
  finOnly?: boolean;
  /**
   * Who carries NEW outbound connections: 'packets' (this path), or 'proxy' (the
   * connect4 proxy of the same fault: then only the outbound connections open
   * at inject come here).
   */
  newOutbound: 'packets' | 'proxy';
  /**
   * With 'proxy': the target's outbound proxies of other faults at inject (this fault's own
   * is made after). The connections they carry to a destination in scope (handed back by a
   * reverted fault, or taken by a fault still in force) are held one by one like the other
   * open ones: on their way to that proxy.
   */
  otherProxies?: readonly ProxyEntry[];
}

/** What the packet path counted. */
export interface PacketPathStats {
  /** Connections (TCP flows) whose packets the fault saw on the packet path, or that were open in scope at inject. */
  connectionsMatched: number;
  /** Connections in scope that were already open when the fault was injected (inbound and outbound). */
  connectionsOpenAtInject: number;
  packetsQueued: number;
  packetsDelayed: number;
  packetsHeld: number;
  packetsDropped: number;
  /** Connections stalled (timeout) or reset (reset) on the packet path. */
  connectionsHit: number;
  /**
   * reset: of those, the ones whose other end was a socket on this host (a proxy of another
   * fault carrying the connection, a host process), closed at once too rather than left to
   * the RST.
   */
  peersClosed: number;
  connectionsSparedOnPackets: number;
  queueErrors: number;
  /** Other faults' proxies on this target (http, reset...) whose connections this fault also holds, as they carry connections in its scope. */
  proxiesFollowed: number;
  /** Packets that carried the kernel's queueing time (held from then; the others from when the reader read them). */
  packetsStamped: number;
  /** The longest a packet waited in the kernel's queue before our reader took it, ms (packets the kernel stamped). */
  queueLagMsMax: number;
  /** latency: the latest a held packet was given back after its due time, ms. */
  releaseLateMsMax: number;
  /** latency: the reader's timer wake-up time after an idle wait, ms, as learned (it wakes that much early). */
  wakeUpMs: number;
  /** latency: CPU time the reader spent spinning from that early wake-up to the due times, ms in all. */
  releaseSpinMs: number;
}

export interface AppliedPacketPath {
  stats(): PacketPathStats;
  revert(): Promise<void>;
  /** The listening ports the inbound rules cover (the target's own, or `port`). */
  inboundPorts: readonly number[];
}

const chunks = <T>(xs: readonly T[], n: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
};

/**
 * Match arguments for a list of ports, one array per rule: `--sport`/`--dport`
 * per port for a few (a native nftables match: re-creating a rule with the
 * multiport match costs the kernel 10-15 ms here, a plain port 0.1 ms), multiport
 * in chunks of 15 for many.
 */
export function portMatches(ports: readonly number[], way: 'source' | 'destination'): string[][] {
  if (ports.length <= 4) return ports.map((p) => [way === 'source' ? '--sport' : '--dport', String(p)]);
  return chunks(ports, 15).map((c) => ['-m', 'multiport', way === 'source' ? '--sports' : '--dports', c.join(',')]);
}

/** The connections open now that the scope covers. */
export function connectionsInScope(table: TcpTable, spec: Pick<PacketPathSpec, 'connections' | 'peers' | 'port'>): TcpConnection[] {
  return table.connections.filter((c) => {
    if (spec.connections !== 'all' && spec.connections !== c.way) return false;
    if (!spec.peers.some((p) => peerCovers(p, c.family, c.remote))) return false;
    if (spec.port === undefined) return true;
    return c.way === 'inbound' ? c.localPort === spec.port : c.remotePort === spec.port;
  });
}

/**
 * The target's connections that other faults' proxies carry to a destination the scope
 * covers, as the target's netns sees them: from its address and port to the proxy.
 */
export function proxiedInScope(entries: readonly ProxyEntry[], spec: Pick<PacketPathSpec, 'peers' | 'port'>): TcpConnection[] {
  const out: TcpConnection[] = [];
  for (const e of entries) {
    if (e.way !== 'outbound' || !e.carried) continue;
    for (const c of e.carried()) {
      const family = c.client.includes(':') ? 6 : 4;
      const proxy = family === 6 ? e.address6 : e.address;
      if (!proxy || (spec.port !== undefined && c.dst.port !== spec.port)) continue;
      if (!spec.peers.some((p) => peerCoversAddress(p, c.dst.address))) continue;
      out.push({ family, local: c.client, localPort: c.clientPort, remote: proxy, remotePort: e.port, way: 'outbound' });
    }
  }
  return out;
}

/**
 * The connections open now that the scope covers, with those other faults' proxies carry
 * for the target (spec.otherProxies: the stream kinds) when the scope has outbound ones.
 */
export function openInScope(
  table: TcpTable,
  spec: Pick<PacketPathSpec, 'connections' | 'peers' | 'port' | 'otherProxies'>,
): TcpConnection[] {
  const open = connectionsInScope(table, spec);
  if (spec.connections === 'inbound' || !spec.otherProxies?.length) return open;
  // Without a peer the table's own rows list them already (every remote is in scope).
  const key = (c: TcpConnection) => `${c.local} ${c.localPort} ${c.remote} ${c.remotePort}`;
  const listed = new Set(open.map(key));
  return [...open, ...proxiedInScope(spec.otherProxies, spec).filter((c) => !listed.has(key(c)))];
}

/** iptables matches per family: OUTPUT (what the target sends) and INPUT (what it receives). */
export type FamilyRules = Record<IpFamily, { output: string[][]; input: string[][] }>;

const noRules = (): FamilyRules => ({ 4: { output: [], input: [] }, 6: { output: [], input: [] } });

/**
 * The iptables matches for the spec, per family: a peer's rules go to its
 * family's tables, every peer's (no peer) to both, the IPv6 ones only when
 * `ipv6` (the target's netns has IPv6; a v6 peer makes them anyway).
 */
export function queueMatches(
  table: TcpTable,
  spec: Omit<PacketPathSpec, 'queue'>,
  ipv6 = true,
): { rules: FamilyRules; inboundPorts: number[] } {
  const rules = noRules();
  const fin = spec.finOnly ? ['--tcp-flags', 'FIN', 'FIN'] : [];
  const tcp = ['-p', 'tcp', ...fin];
  const listening = table.listening;
  const inboundPorts = spec.connections === 'outbound' ? [] : spec.port !== undefined ? [spec.port] : listening;
  const families = (p: PeerMatch) => peerFamilies(p).filter((f) => f === 4 || ipv6 || p.family === 6);
  const used = new Set(spec.peers.flatMap(families));
  for (const peer of spec.peers) {
    const cidr = peerCidr(peer);
    const to = cidr ? ['-d', cidr] : [];
    const from = cidr ? ['-s', cidr] : [];
    for (const f of families(peer)) {
      for (const m of portMatches(inboundPorts, 'source')) rules[f].output.push([...tcp, ...to, ...m]);
      for (const m of portMatches(inboundPorts, 'destination')) rules[f].input.push([...tcp, ...from, ...m]);
    }
  }
  if (spec.connections !== 'inbound') {
    if (spec.newOutbound === 'packets') {
      // Outbound: everything not from or to one of the target's listening ports.
      for (const f of used) {
        for (const m of portMatches(listening, 'source')) rules[f].output.push(['-p', 'tcp', ...m, '-j', 'RETURN']);
        for (const m of portMatches(listening, 'destination')) rules[f].input.push(['-p', 'tcp', ...m, '-j', 'RETURN']);
      }
      for (const peer of spec.peers) {
        const cidr = peerCidr(peer);
        for (const f of families(peer)) {
          rules[f].output.push([...tcp, ...(cidr ? ['-d', cidr] : []), ...(spec.port ? ['--dport', String(spec.port)] : [])]);
          rules[f].input.push([...tcp, ...(cidr ? ['-s', cidr] : []), ...(spec.port ? ['--sport', String(spec.port)] : [])]);
        }
      }
    } else {
      // The proxy carries new ones; the ones open now are matched one by one.
      for (const c of openInScope(table, { ...spec, connections: 'outbound' })) {
        const [l, r] = [c.local, c.remote];
        rules[c.family].output.push([...tcp, '-s', l, '-d', r, '--sport', String(c.localPort), '--dport', String(c.remotePort)]);
        rules[c.family].input.push([...tcp, '-s', r, '-d', l, '--sport', String(c.remotePort), '--dport', String(c.localPort)]);
      }
    }
  }
  // Never the container's own loopback traffic (an inbound proxy's local leg to the server included).
  for (const f of [4, 6] as const) {
    rules[f].output = rules[f].output.map((r) => ['!', '-o', 'lo', ...r]);
    rules[f].input = spec.hooks === 'both' ? rules[f].input.map((r) => ['!', '-i', 'lo', ...r]) : [];
  }
  return { rules, inboundPorts };
}

/** What either way of queueing (kept rules, or a chain per fault) hands the common part. */
interface Queued {
  q: PacketQueue;
  /** Connections in scope open at inject (known once the TCP table is read). */
  open(): number;
  followed(): number;
  inboundPorts: readonly number[];
  /** Nothing new is queued after it. */
  stop(): Promise<void>;
}

export async function applyPacketPath(
  kind: string,
  target: ResolvedTarget,
  ctx: PacketPathContext,
  spec: PacketPathSpec,
): Promise<AppliedPacketPath> {
  const netns = await sandboxOf(ctx.docker, target.id, target.pid);
  if (!netns) {
    throw new ChaosSpecError(`chaos.inject(${kind})`, [
      { field: 'target', value: target.name, expected: 'a running container with its own network namespace (Docker SandboxKey)' },
    ]);
  }
  // Proxies of other faults on this target whose connections are in scope: those the target
  // opens leave towards the gateway on the proxy's port (latency follows them;
  // the stream kinds have their own proxy in the chain), those it accepts
  // through an inbound listener in its netns are answered from that port.
  const follows = (e: ProxyEntry) =>
    (e.way === 'outbound' ? spec.newOutbound === 'packets' && spec.connections !== 'inbound' : spec.connections !== 'outbound') &&
    proxyOverlaps(e, spec.peers, spec.port);
  const kept = keptRulesAvailable() && spec.peers.filter((p) => p.family !== 0).length <= ctx.kernel.constant('VC_QM_PEERS');
  let queued: Queued | undefined;
  if (kept) {
    try {
      queued = await queueByKeptRules(target, ctx, spec, netns, follows);
    } catch (err) {
      const why = keptRulesFailure();
      if (!why) throw err;
      process.stderr.write(
        `vitest-chaos: the packet path could not keep its rules here (${why.split('\n')[0]}); it commits a chain per fault instead (inject and revert take milliseconds)\n`,
      );
    }
  }
  queued ??= await queueByChain(kind, target, ctx, spec, netns, follows);
  const { q } = queued;
  let last: PacketPathStats | undefined;
  const stats = (): PacketPathStats => {
    if (last) return last;
    const s = q.stats();
    return {
      connectionsMatched: s.flows,
      connectionsOpenAtInject: queued.open(),
      packetsQueued: s.packets,
      packetsDelayed: s.delayed,
      packetsHeld: s.held,
      packetsDropped: s.dropped,
      connectionsHit: s.flowsHit,
      peersClosed: s.peersClosed,
      connectionsSparedOnPackets: s.flowsSpared,
      queueErrors: s.errors,
      proxiesFollowed: queued.followed(),
      packetsStamped: s.stamped,
      queueLagMsMax: s.readLagMsMax,
      releaseLateMsMax: s.lateMsMax,
      wakeUpMs: s.wakeMsMean,
      releaseSpinMs: s.spinMsSum,
    };
  };
  return {
    inboundPorts: queued.inboundPorts,
    stats,
    async revert() {
      if (last) return;
      // Rules first (nothing new is queued), then every held packet goes on.
      try {
        await queued.stop();
      } finally {
        last = stats();
        q.close();
      }
    },
  };
}

/**
 * The fast way: a slot of the netns's kept rules (targets/queue-slots.ts),
 * filled with the fault's scope. The listening ports come from sock_diag when
 * the scope needs them; the TCP table (milliseconds: the kernel walks every
 * connection of the host) is read before only for the open outbound connections
 * a proxied kind holds on packets, else after, for the count of those open.
 */
async function queueByKeptRules(
  target: ResolvedTarget,
  ctx: PacketPathContext,
  spec: PacketPathSpec,
  netns: string,
  follows: (e: ProxyEntry) => boolean,
): Promise<Queued> {
  const qm = ctx.kernel.queueMatch;
  // The open connections a proxy does not carry are matched one by one: they need the TCP table.
  const table =
    spec.newOutbound === 'proxy' && spec.connections !== 'inbound' ? targetTcpTable({ containerId: target.id, netns }) : undefined;
  // Which of its ports the target listens on tells a connection it accepted from one it opened: needed
  // for inbound ones without a port, and to leave them out of every outbound one, unless both are taken.
  const inboundByListening = spec.connections !== 'outbound' && spec.port === undefined;
  const everyOutbound = spec.connections !== 'inbound' && spec.newOutbound === 'packets';
  const byWay = (inboundByListening || everyOutbound) && !(inboundByListening && everyOutbound);
  const listening = table ? table.listening : byWay ? targetListeningPorts({ containerId: target.id, netns }) : undefined;
  let slot: QueueSlot | undefined;
  let reader: PacketQueue | undefined;
  for (let tries = 0; !reader; tries++) {
    slot = await leaseQueueSlot(ctx.kernel, { containerId: target.id, netns }, ctx.journal());
    try {
      reader = slot.reader({ ...spec.queue, seed: ctx.seed });
    } catch (err) {
      // Another process bound the slot's queue number in this netns: the slot is its now.
      slot.release();
      if ((err as { code?: string }).code !== 'EBUSY' || tries >= 3) throw err;
    }
  }
  const mine = slot as QueueSlot;
  const bound = reader;
  // The slot's reader stays bound for the next fault: closing this one's queue is the slot's release.
  const queue: PacketQueue = {
    queue: mine.queue,
    stats: () => bound.stats(),
    addFlows: (flows) => bound.addFlows(flows),
    reset: (policy) => bound.reset(policy),
    close: () => mine.release(),
  };
  let open = 0;
  let stopped = false;
  const scope: QueueMatchScope = {
    inbound: spec.connections !== 'outbound',
    outbound: spec.connections === 'inbound' ? null : spec.newOutbound === 'packets' ? 'all' : 'listed',
    bothHooks: spec.hooks === 'both',
    finOnly: spec.finOnly === true,
    ...(spec.port !== undefined ? { port: spec.port } : {}),
    peers: spec.peers,
  };
  const counted = (t: TcpTable) => {
    const inScope = openInScope(t, spec);
    open = inScope.length;
    queue.addFlows(inScope.map((c) => ({ local: c.local, localPort: c.localPort, remote: c.remote, remotePort: c.remotePort })));
  };
  const followed = new Map<ProxyEntry, Buffer[]>();
  const left = new Set<ProxyEntry>();
  const follow = (e: ProxyEntry) => {
    const keys =
      e.way === 'outbound'
        ? [e.address, ...(e.address6 ? [e.address6] : [])].map((a) => qm.proxy(mine.index, e.port, a))
        : [qm.proxy(mine.index, e.port, null)];
    followed.set(e, keys);
  };
  const watch = watchProxies({
    cgroupId: target.cgroup.id,
    async join(e) {
      if (!stopped && follows(e)) follow(e);
    },
    async leave(e) {
      // A later proxy may listen on the same address and port (a port freed and taken again) while this one still relays: its key stays.
      left.add(e);
      const held = new Set([...followed].flatMap(([x, keys]) => (left.has(x) ? [] : keys.map((k) => k.toString('hex')))));
      for (const k of followed.get(e) ?? []) if (!held.has(k.toString('hex'))) qm.unfollow(k);
    },
  });
  try {
    if (listening && byWay) qm.listening(mine.index, listening);
    if (table) {
      qm.flows(mine.index, openInScope(table, { ...spec, connections: 'outbound' }));
      counted(table);
    }
    for (const e of watch.current) if (follows(e)) follow(e);
    mine.activate(scope);
  } catch (err) {
    watch.stop();
    mine.deactivate();
    mine.release();
    throw err;
  }
  if (!table) {
    // Only counted here (open connections in scope get the fault by their packets): read once it is in force.
    setImmediate(() => {
      if (stopped) return;
      try {
        counted(targetTcpTable({ containerId: target.id, netns }));
      } catch {
        // the target is gone: nothing open to count
      }
    });
  }
  return {
    q: queue,
    open: () => open,
    followed: () => followed.size,
    inboundPorts: spec.connections === 'outbound' ? [] : spec.port !== undefined ? [spec.port] : (listening ?? []),
    async stop() {
      if (stopped) return;
      stopped = true;
      watch.stop();
      mine.deactivate();
    },
  };
}

/** The way without bpffs: a chain per fault, committed at inject and deleted at revert (targets/queue-rules.ts). */
async function queueByChain(
  kind: string,
  target: ResolvedTarget,
  ctx: PacketPathContext,
  spec: PacketPathSpec,
  netns: string,
  follows: (e: ProxyEntry) => boolean,
): Promise<Queued> {
  const table = await tcpTableOf(target.pid);
  const ipv6 = hasIpv6(target.pid);
  const open = openInScope(table, spec);
  const { rules: matches, inboundPorts } = queueMatches(table, spec, ipv6);
  const q = openPacketQueue({ ...spec.queue, netns, seed: ctx.seed });
  const proxyRules = (e: ProxyEntry): FamilyRules => {
    const r = noRules();
    if (e.way === 'outbound') {
      const listeners: [IpFamily, string][] = [[4, e.address]];
      if (e.address6) listeners.push([6, e.address6]);
      for (const [f, address] of listeners) {
        r[f].output.push(['-p', 'tcp', '-d', address, '--dport', String(e.port)]);
        if (spec.hooks === 'both') r[f].input.push(['-p', 'tcp', '-s', address, '--sport', String(e.port)]);
      }
      return r;
    }
    for (const p of spec.peers) {
      const c = peerCidr(p);
      for (const f of peerFamilies(p).filter((x) => x === 4 || ipv6 || p.family === 6)) {
        r[f].output.push(['!', '-o', 'lo', '-p', 'tcp', ...(c ? ['-d', c] : []), '--sport', String(e.port)]);
        if (spec.hooks === 'both') r[f].input.push(['!', '-i', 'lo', '-p', 'tcp', ...(c ? ['-s', c] : []), '--dport', String(e.port)]);
      }
    }
    return r;
  };
  let rules: InstalledQueueRules | undefined;
  const followed = new Set<ProxyEntry>();
  const watch = watchProxies({
    cgroupId: target.cgroup.id,
    async join(e) {
      if (!rules || !follows(e)) return;
      const r = proxyRules(e);
      for (const f of [4, 6] as const) {
        if (r[f].output.length && (await rules.append(f, 'O', r[f].output))) followed.add(e);
        if (r[f].input.length) await rules.append(f, 'I', r[f].input);
      }
    },
    async leave(e) {
      if (!rules || !followed.has(e)) return;
      const r = proxyRules(e);
      for (const f of [4, 6] as const) {
        await rules.drop(f, 'O', r[f].output);
        await rules.drop(f, 'I', r[f].input);
      }
    },
  });
  for (const e of watch.current) {
    if (!follows(e)) continue;
    followed.add(e);
    const r = proxyRules(e);
    for (const f of [4, 6] as const) {
      matches[f].output.push(...r[f].output);
      matches[f].input.push(...r[f].input);
    }
  }
  try {
    q.addFlows(open.map((c) => ({ local: c.local, localPort: c.localPort, remote: c.remote, remotePort: c.remotePort })));
    rules = await installQueueRules(
      { containerId: target.id, netns, queue: q.queue, rules: matches, description: `${kind} on ${target.name} (NFQUEUE ${q.queue})` },
      ctx.journal(),
    );
  } catch (err) {
    watch.stop();
    q.close();
    throw err;
  }
  const installed = rules;
  return {
    q,
    open: () => open.length,
    followed: () => followed.size,
    inboundPorts,
    async stop() {
      watch.stop();
      await installed.remove();
    },
  };
}

/**
 * A stream fault on every connection in scope: new outbound connections go
 * through the connect4 proxy (the fault's exact byte- and FIN-level policy),
 * the connections the target accepts and those open at inject through the
 * packet path. Both are reverted together; their counters are added up.
 */
export async function applyBothPaths<St extends object>(
  kind: string,
  target: ResolvedTarget,
  ctx: PacketPathContext,
  spec: Omit<PacketPathSpec, 'newOutbound'>,
  proxied: (() => Promise<{ stats(): St; revert(): Promise<void> | void }>) | null,
): Promise<{ stats(): St & PacketPathStats; revert(): Promise<void> }> {
  // The other faults' proxies, before this fault's own is made.
  const otherProxies = proxiesOf(target.cgroup.id);
  const proxy = spec.connections === 'inbound' || !proxied ? null : await proxied();
  let packets: AppliedPacketPath;
  try {
    packets = await applyPacketPath(kind, target, ctx, { ...spec, newOutbound: 'proxy', otherProxies });
  } catch (err) {
    await proxy?.revert();
    throw err;
  }
  return {
    stats: () => ({ ...((proxy?.stats() ?? {}) as St), ...packets.stats() }),
    async revert() {
      try {
        await packets.revert();
      } finally {
        await proxy?.revert();
      }
    },
  };
}
