// The packet data path's slot programs (bpf/queue-match.bpf.c): the socket
// filters an iptables bpf match runs in a target's netns, one per slot (the
// slot index is the object's .rodata), all on the same maps. A slot's fault is
// map entries: its scope (struct vc_qm_slot), the ports its target listens on,
// the connections open at inject that it holds, and the proxies it follows.
import { isIPv6 } from 'node:net';
import { bpfObjectPath, loadAddon, type NativeObject } from './addon.js';
import { ipv6Bytes, type PeerMatch } from './peer-match.js';
import { checkConstants, structCodec, type StructCodec } from './struct-codec.js';

export interface QueueMatchScope {
  inbound: boolean;
  /** 'all': every connection the target opens; 'listed': only those given to addFlows. */
  outbound: 'all' | 'listed' | null;
  /** What the target receives too, not only what it sends. */
  bothHooks: boolean;
  /** An inbound proxy's slot: new inbound connections in scope are redirected to it (nat), nothing is queued. */
  redirect?: boolean;
  finOnly: boolean;
  port?: number;
  /** Empty, or one covering every peer: every peer. */
  peers: readonly PeerMatch[];
}

export interface QueueMatchFlow {
  local: string;
  localPort: number;
  remote: string;
  remotePort: number;
}

/** 16 bytes: IPv6, or IPv4 mapped (::ffff:a.b.c.d), as the program compares them. */
export function addr16(ip: string): Buffer {
  if (isIPv6(ip)) {
    const b = ipv6Bytes(ip);
    if (!b) throw new Error(`not an IPv6 address: ${ip}`);
    return b;
  }
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...parts]);
}

/** The 16-byte mask of a 128-bit prefix length. */
export function prefixMask(bits: number): Buffer {
  const m = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) m[i] = bits >= 8 * (i + 1) ? 0xff : bits > 8 * i ? (0xff << (8 - (bits - 8 * i))) & 0xff : 0;
  return m;
}

/** A peer as a 128-bit prefix; null when it covers every peer. */
export function peerPrefix(p: PeerMatch): { addr: Buffer; prefix: number } | null {
  if (p.family === 0) return null;
  if (p.family === 6) {
    let bits = 0;
    for (const b of p.mask6 as Buffer) for (let m = b; m & 0x80; m = (m << 1) & 0xff) bits++;
    return { addr: p.addr6 as Buffer, prefix: bits };
  }
  let bits = 0;
  for (let m = p.mask >>> 0; m & 0x80000000; m = (m << 1) >>> 0) bits++;
  const a = p.addr >>> 0;
  return { addr: addr16(`${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`), prefix: 96 + bits };
}

export class QueueMatchPrograms {
  private readonly base: NativeObject;
  private readonly slotCodec: StructCodec<'vc_qm_slot'>;
  private readonly portKey: StructCodec<'vc_qm_port_key'>;
  private readonly flowKey: StructCodec<'vc_qm_flow_key'>;
  private readonly proxyKey: StructCodec<'vc_qm_proxy_key'>;
  readonly slots: number;
  readonly maxPeers: number;
  /** Slots in use at once in one netns, and the size of its qm_groups entry. */
  readonly groupSlots: number;
  private readonly groupSize: number;
  private readonly flags: Record<string, number>;
  /** Every key a slot added, to delete on clear. */
  private readonly keys = new Map<number, { map: string; key: Buffer }[]>();
  private readonly gens = new Map<number, number>();

  constructor() {
    const Obj = loadAddon().BpfObject;
    // The maps' owner; its programs (slot index none) are never pinned.
    const none = Buffer.alloc(4);
    none.writeUInt32LE(0xffffffff);
    this.base = new Obj(bpfObjectPath('queue-match'), { rodata: none });
    checkConstants(this.base, 'queue-match');
    const enums = this.base.enums();
    this.slots = enums.vc_qm_limits?.VC_QM_SLOTS ?? 0;
    this.maxPeers = enums.vc_qm_limits?.VC_QM_PEERS ?? 0;
    this.groupSlots = enums.vc_qm_limits?.VC_QM_GROUP ?? 0;
    this.groupSize = this.base.structLayout('vc_qm_group').size;
    this.flags = enums.vc_qm_flags ?? {};
    this.slotCodec = structCodec(this.base, 'vc_qm_slot');
    this.portKey = structCodec(this.base, 'vc_qm_port_key');
    this.flowKey = structCodec(this.base, 'vc_qm_flow_key');
    this.proxyKey = structCodec(this.base, 'vc_qm_proxy_key');
  }

  /**
   * Pins the slot's programs for iptables: the queue's output and input matches
   * at `${prefix}-o` and `${prefix}-i`, or the inbound proxy's REDIRECT match at
   * `${prefix}-r`, from an object loaded for the slot (a verifier run). Call
   * `done` once the rule holds them: the object is closed (the rule keeps the
   * programs, which keep the shared maps), so a slot costs no descriptor of ours.
   */
  pin(slot: number, prefix: string, use: 'queue' | 'redirect'): { paths: string[]; done(): void } {
    const rodata = Buffer.alloc(4);
    rodata.writeUInt32LE(slot);
    const o = new (loadAddon().BpfObject)(bpfObjectPath('queue-match'), { rodata, share: this.base });
    const programs: [string, string][] =
      use === 'queue'
        ? [
            ['vc_qm_output', `${prefix}-o`],
            ['vc_qm_input', `${prefix}-i`],
          ]
        : [['vc_qm_redirect', `${prefix}-r`]];
    try {
      for (const [program, path] of programs) o.pinProgram(program, path);
    } catch (err) {
      o.close();
      throw err;
    }
    return { paths: programs.map(([, path]) => path), done: () => o.close() };
  }

  private add(slot: number, map: string, key: Buffer): void {
    this.base.mapUpdate(map, key, Buffer.from([1]));
    let list = this.keys.get(slot);
    if (!list) this.keys.set(slot, (list = []));
    list.push({ map, key });
  }

  /** The slot's generation: its fault's port keys carry it (the program learns ports under it too). */
  private gen(slot: number): number {
    return this.gens.get(slot) ?? 1;
  }

  listening(slot: number, ports: readonly number[]): void {
    const gen = this.gen(slot);
    for (const port of ports) this.add(slot, 'qm_ports', this.portKey.encode({ slot, gen, port }));
  }

  flows(slot: number, flows: readonly QueueMatchFlow[]): void {
    for (const f of flows) {
      const key = { slot, local_port: f.localPort, remote_port: f.remotePort, local: addr16(f.local), remote: addr16(f.remote) };
      this.add(slot, 'qm_flows', this.flowKey.encode(key));
    }
  }

  /** Follows a proxy: an outbound one's listener (address, port), or an inbound one's port (address null: the slot's peers apply). */
  proxy(slot: number, port: number, address: string | null): Buffer {
    const key = this.proxyKey.encode({ slot, port, addr: address ? addr16(address) : Buffer.alloc(16) });
    this.add(slot, 'qm_proxies', key);
    return key;
  }

  unfollow(key: Buffer): void {
    this.base.mapDelete('qm_proxies', key);
  }

  /**
   * Puts the scope in force: from here the slot's rules queue (or redirect) what it
   * covers, unless a newer slot of its group (listed with order()) takes it first.
   */
  activate(slot: number, group: number, scope: QueueMatchScope): void {
    const f = this.flags;
    const prefixes = scope.peers.map(peerPrefix);
    const every = prefixes.length === 0 || prefixes.some((p) => p === null);
    const list = every ? [] : (prefixes as { addr: Buffer; prefix: number }[]);
    if (list.length > this.maxPeers) throw new Error(`the packet path matches at most ${this.maxPeers} peer addresses, got ${list.length}`);
    const mask = Buffer.alloc(this.maxPeers * 16);
    const addr = Buffer.alloc(this.maxPeers * 16);
    list.forEach((p, i) => {
      prefixMask(p.prefix).copy(mask, i * 16);
      p.addr.copy(addr, i * 16);
    });
    const flags =
      (f.VC_QM_ACTIVE ?? 0) |
      (scope.inbound ? (f.VC_QM_INBOUND ?? 0) : 0) |
      (scope.outbound === 'all' ? (f.VC_QM_OUTBOUND_ALL ?? 0) : 0) |
      (scope.outbound === 'listed' ? (f.VC_QM_OUTBOUND_LISTED ?? 0) : 0) |
      (scope.bothHooks ? (f.VC_QM_BOTH_HOOKS ?? 0) : 0) |
      (scope.finOnly ? (f.VC_QM_FIN_ONLY ?? 0) : 0) |
      (scope.port !== undefined ? (f.VC_QM_PORT ?? 0) : 0) |
      (scope.redirect ? (f.VC_QM_REDIRECT ?? 0) : 0);
    const value = this.slotCodec.encode({
      flags,
      port: scope.port ?? 0,
      npeers: list.length,
      gen: this.gen(slot),
      group,
      peer_addr: addr,
      peer_mask: mask,
      matched: 0n,
    });
    this.base.mapUpdate('qm_slots', this.key(slot), value);
  }

  /** The slots in use in a netns's group, newest first: of those that take a packet, the first gets it. */
  order(group: number, slots: readonly number[]): void {
    const value = Buffer.alloc(this.groupSize);
    value.writeUInt32LE(Math.min(slots.length, this.groupSlots), 0);
    for (const [i, s] of slots.slice(0, this.groupSlots).entries()) value.writeUInt32LE(s, 4 + 4 * i);
    this.base.mapUpdate('qm_groups', this.key(group), value);
  }

  /** What is in the maps now (for tests and status): active slots, and the entries of each hash map. */
  inUse(): { activeSlots: number; qm_ports: number; qm_flows: number; qm_proxies: number } {
    let activeSlots = 0;
    for (let i = 0; i < this.slots; i++) {
      const v = this.base.mapLookup('qm_slots', this.key(i));
      if (v && this.slotCodec.decode(v).flags & (this.flags.VC_QM_ACTIVE ?? 1)) activeSlots++;
    }
    const n = (m: string) => this.base.mapKeys(m).length;
    // Port keys of a past generation (learned by the program for a fault now reverted) match nothing.
    const ports = this.base.mapKeys('qm_ports').filter((k) => {
      const key = this.portKey.decode(k);
      return key.gen === this.gen(key.slot);
    }).length;
    return { activeSlots, qm_ports: ports, qm_flows: n('qm_flows'), qm_proxies: n('qm_proxies') };
  }

  /** Packets the slot's programs queued since it was activated. */
  matched(slot: number): number {
    const v = this.base.mapLookup('qm_slots', this.key(slot));
    return v ? Number(this.slotCodec.decode(v).matched) : 0;
  }

  /** Nothing more is queued for the slot; its entries are deleted. */
  clear(slot: number): void {
    this.base.mapUpdate('qm_slots', this.key(slot), Buffer.alloc(this.slotCodec.size));
    for (const { map, key } of this.keys.get(slot) ?? []) this.base.mapDelete(map, key);
    this.keys.delete(slot);
    // Ports the program learned for this fault stay in the LRU map under its generation: never matched again.
    this.gens.set(slot, (this.gen(slot) + 1) >>> 0 || 1);
  }

  private key(slot: number): Buffer {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(slot);
    return k;
  }
}
