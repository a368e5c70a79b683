// Typed access to our BPF programs. One Kernel per process: the kernel objects
// it loads are per process anyway (links die with it), and loading each object
// once keeps inject() to a map update plus, for a new cgroup, one attach.
import { endianness } from 'node:os';
import { loadAddon } from './addon.js';
import { SlottedPrograms } from './slotted-programs.js';
import { structCodec, type StructCodec } from './struct-codec.js';
import { SyscallPrograms } from './syscall-programs.js';

export const SKB_RULE = {
  flags: 'u32',
  drop_threshold: 'u32',
  peer_addr: 'be32',
  peer_mask: 'be32',
  port: 'u16',
  protocol: 'u8',
} as const;

export const SKB_STATS = {
  ingress_seen: 'u64',
  ingress_dropped: 'u64',
  egress_seen: 'u64',
  egress_dropped: 'u64',
  rng: 'u64',
} as const;

export const CONN_RULE = {
  action: 'u32',
  peer_addr: 'be32',
  peer_mask: 'be32',
  port: 'u16',
  redirect_port: 'be16',
  redirect_addr: 'be32',
  tcp_only: 'u32',
} as const;

export const CONN_STATS = { matched: 'u64', rejected: 'u64', redirected: 'u64' } as const;

export const FLOW_KEY = { addr: 'be32', port: 'u32' } as const;
export const FLOW = { cgroup_id: 'u64', slot: 'u32', orig_addr: 'be32', orig_port: 'be16' } as const;

export const DNS_RULE = { ns_addr: 'be32', ns_port: 'be16', redirect_port: 'be16', redirect_addr: 'be32' } as const;
export const DNS_STATS = { connects_redirected: 'u64', sends_redirected: 'u64', replies_rewritten: 'u64' } as const;

export const VETH_RULE = {
  flags: 'u32',
  threshold: 'u32',
  peer_addr: 'be32',
  peer_mask: 'be32',
  port: 'u16',
  protocol: 'u8',
} as const;

export const VETH_STATS = {
  ingress_seen: 'u64',
  ingress_hit: 'u64',
  ingress_offloaded: 'u64',
  egress_seen: 'u64',
  egress_hit: 'u64',
  egress_offloaded: 'u64',
  rng: 'u64',
} as const;

export type NetfilterPrograms = SlottedPrograms<typeof SKB_RULE, typeof SKB_STATS>;
export type VethPrograms = SlottedPrograms<typeof VETH_RULE, typeof VETH_STATS>;
export type ConnectPrograms = SlottedPrograms<typeof CONN_RULE, typeof CONN_STATS>;
export type DnsPrograms = SlottedPrograms<typeof DNS_RULE, typeof DNS_STATS>;

export interface FlowRecord {
  cgroupId: bigint;
  slot: number;
  /** Dotted IPv4 the connection was going to. */
  address: string;
  port: number;
}

export class Kernel {
  private netfilterPrograms?: NetfilterPrograms;
  private connectPrograms?: ConnectPrograms;
  private dnsPrograms?: DnsPrograms;
  private vethPrograms?: VethPrograms;
  private syscallPrograms?: SyscallPrograms;
  private flowCodecs?: { key: StructCodec<typeof FLOW_KEY>; flow: StructCodec<typeof FLOW> };
  readonly constants: Record<string, number>;

  constructor() {
    if (endianness() !== 'LE') throw new Error('vitest-chaos: only little-endian hosts are supported');
    this.constants = loadAddon().layouts.constants;
  }

  constant(name: string): number {
    const v = this.constants[name];
    if (v === undefined) throw new Error(`native addon has no constant ${name} (rebuild native/)`);
    return v;
  }

  /** cgroup_skb ingress + egress: packet loss and drop partitions. */
  get netfilter(): NetfilterPrograms {
    this.netfilterPrograms ??= new SlottedPrograms(
      'netfilter',
      ['vc_ingress', 'vc_egress'],
      { slots: 'skb_slots', rules: 'skb_rules', stats: 'skb_stats' },
      ['vc_skb_rule', SKB_RULE],
      ['vc_skb_stats', SKB_STATS],
    );
    return this.netfilterPrograms;
  }

  /** cgroup/connect4 + sockops: reject and redirect the target's connections. */
  get connect(): ConnectPrograms {
    this.connectPrograms ??= new SlottedPrograms(
      'connect',
      ['vc_connect4', 'vc_sockops'],
      { slots: 'conn_slots', rules: 'conn_rules', stats: 'conn_stats' },
      ['vc_conn_rule', CONN_RULE],
      ['vc_conn_stats', CONN_STATS],
    );
    return this.connectPrograms;
  }

  /** tp_btf/sys_enter: a signal to the target's processes on a given syscall. */
  get syscalls(): SyscallPrograms {
    this.syscallPrograms ??= new SyscallPrograms();
    return this.syscallPrograms;
  }

  /**
   * TCX ingress + egress on a container's host-side veth: packet corruption and
   * duplication. Slots are keyed by the veth's ifindex (acquire(String(ifindex), ifindex)).
   */
  get veth(): VethPrograms {
    this.vethPrograms ??= new SlottedPrograms(
      'veth',
      ['vc_veth_ingress', 'vc_veth_egress'],
      { slots: 'veth_slots', rules: 'veth_rules', stats: 'veth_stats' },
      ['vc_veth_rule', VETH_RULE],
      ['vc_veth_stats', VETH_STATS],
      (object, program, where) =>
        object.attachTcx(program, Number(where), program === 'vc_veth_ingress' ? 'ingress' : 'egress'),
    );
    return this.vethPrograms;
  }

  /** cgroup/connect4 + sendmsg4 + recvmsg4: the target's DNS queries to a fake resolver. */
  get dns(): DnsPrograms {
    this.dnsPrograms ??= new SlottedPrograms(
      'dns',
      ['vc_dns_connect4', 'vc_dns_sendmsg4', 'vc_dns_recvmsg4'],
      { slots: 'dns_slots', rules: 'dns_rules', stats: 'dns_stats' },
      ['vc_dns_rule', DNS_RULE],
      ['vc_dns_stats', DNS_STATS],
    );
    return this.dnsPrograms;
  }

  /** The original destination of a connection the connect4 program redirected. */
  lookupFlow(clientAddress: string, clientPort: number): FlowRecord | null {
    // Called for every proxied connection: the codecs are built once.
    this.flowCodecs ??= {
      key: structCodec('vc_flow_key', FLOW_KEY, loadAddon().layouts.vc_flow_key),
      flow: structCodec('vc_flow', FLOW, loadAddon().layouts.vc_flow),
    };
    const key = this.flowCodecs.key.encode({ addr: ipv4ToInt(clientAddress), port: clientPort });
    const buf = this.connect.object.mapLookup('flows', key);
    if (!buf) return null;
    const f = this.flowCodecs.flow.decode(buf);
    this.connect.object.mapDelete('flows', key);
    return { cgroupId: f.cgroup_id, slot: f.slot, address: intToIpv4(f.orig_addr), port: f.orig_port };
  }

  /** Live links this process holds (all of them die with the process). */
  liveLinks(): number {
    return loadAddon().liveLinks();
  }
}

let shared: Kernel | undefined;

/** The process's Kernel, created on first use. */
export function kernel(): Kernel {
  shared ??= new Kernel();
  return shared;
}

export function ipv4ToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new Error(`not an IPv4 address: ${ip}`);
  let n = 0;
  for (const p of parts) {
    const b = Number(p);
    if (!/^\d{1,3}$/.test(p) || b > 255) throw new Error(`not an IPv4 address: ${ip}`);
    n = n * 256 + b;
  }
  return n >>> 0;
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
