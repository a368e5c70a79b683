// Typed access to our BPF programs. One Kernel per process: the kernel objects
// it loads are per process anyway (links die with it), and loading each object
// once keeps inject() to a map update plus, for a new cgroup, one attach.
import { endianness } from 'node:os';
import { loadAddon } from './addon.js';
import { BPF_CONSTANTS, type BpfConstant } from './bpf-types.js';
import { ipv6Bytes, ipv6Text } from './peer-match.js';
import { SlottedPrograms } from './slotted-programs.js';
import { QueueMatchPrograms } from './queue-match.js';
import { structCodec, type StructCodec } from './struct-codec.js';
import { ObservePrograms } from './observe-programs.js';
import { SyscallSignalPrograms } from './syscall-signal-programs.js';

export type PacketDropPrograms = SlottedPrograms<'vc_pkt_rule', 'vc_drop_stats'>;
export type VethPrograms = SlottedPrograms<'vc_pkt_rule', 'vc_veth_stats'>;
export type ConnectPrograms = SlottedPrograms<'vc_conn_rule', 'vc_conn_stats'>;
export type DnsPrograms = SlottedPrograms<'vc_dns_rule', 'vc_dns_stats'>;
export type ConnLimitPrograms = SlottedPrograms<'vc_climit_rule', 'vc_climit_stats'>;

export interface FlowRecord {
  cgroupId: bigint;
  slot: number;
  /** Every redirect slot that matched the connection, ascending (slot among them). */
  slots: number[];
  /** The address the connection was going to: dotted IPv4, or IPv6 text. */
  address: string;
  port: number;
}

/**
 * How long the cgroup links of the packet-drop and connect objects stay on a
 * target with no fault of theirs (slotted-programs.ts): a fault injected within
 * it (a ramp's next step, a loop) is a map update, not an attach.
 */
export const LINK_LINGER_MS = 1000;

export class Kernel {
  private packetDropPrograms?: PacketDropPrograms;
  private connectPrograms?: ConnectPrograms;
  private dnsPrograms?: DnsPrograms;
  private vethPrograms?: VethPrograms;
  private syscallSignalPrograms?: SyscallSignalPrograms;
  private observePrograms?: ObservePrograms;
  private connLimitPrograms?: ConnLimitPrograms;
  private queueMatchPrograms?: QueueMatchPrograms;
  private flowCodecs?: { key: StructCodec<'vc_flow_key'>; key6: StructCodec<'vc_flow6_key'>; flow: StructCodec<'vc_flow'> };

  constructor() {
    if (endianness() !== 'LE') throw new Error('vitest-chaos: only little-endian hosts are supported');
  }

  /** A constant of bpf/*.h (each object checks its own against these when it loads). */
  constant(name: BpfConstant): number {
    return BPF_CONSTANTS[name];
  }

  /** cgroup_skb ingress + egress (bpf/packet-drop.bpf.c): packet loss and drop partitions. */
  get packetDrop(): PacketDropPrograms {
    this.packetDropPrograms ??= new SlottedPrograms(
      'packet-drop',
      ['vc_drop_ingress', 'vc_drop_egress'],
      { slots: 'drop_slots', rules: 'drop_rules', stats: 'drop_stats' },
      'vc_pkt_rule',
      'vc_drop_stats',
      undefined,
      LINK_LINGER_MS,
    );
    return this.packetDropPrograms;
  }

  /** cgroup/connect4 + connect6 + sockops: reject and redirect the target's connections. */
  get connect(): ConnectPrograms {
    this.connectPrograms ??= new SlottedPrograms(
      'connect',
      ['vc_connect4', 'vc_connect6', 'vc_sockops'],
      { slots: 'conn_slots', rules: 'conn_rules', stats: 'conn_stats' },
      'vc_conn_rule',
      'vc_conn_stats',
      undefined,
      LINK_LINGER_MS,
    );
    return this.connectPrograms;
  }

  /** tp_btf/sys_enter (bpf/syscall-signal.bpf.c): a signal to the target's processes on a given syscall. */
  get syscallSignal(): SyscallSignalPrograms {
    this.syscallSignalPrograms ??= new SyscallSignalPrograms();
    return this.syscallSignalPrograms;
  }

  /** cgroup/connect4 + cgroup_skb egress + sockops (bpf/conn-limit.bpf.c); its TCX program is attached by conn-limit-rules.ts. */
  get connLimit(): ConnLimitPrograms {
    this.connLimitPrograms ??= new SlottedPrograms(
      'conn-limit',
      ['vc_climit_connect4', 'vc_climit_egress', 'vc_climit_sockops'],
      { slots: 'climit_slots', rules: 'climit_rules', stats: 'climit_stats' },
      'vc_climit_rule',
      'vc_climit_stats',
    );
    return this.connLimitPrograms;
  }

  /** The socket filters of the packet path's kept iptables rules (bpf/queue-match.bpf.c), one object per slot. */
  get queueMatch(): QueueMatchPrograms {
    this.queueMatchPrograms ??= new QueueMatchPrograms();
    return this.queueMatchPrograms;
  }

  /** Tracepoints of bpf/observe.bpf.c: what the kernel saw of observed containers. */
  get observe(): ObservePrograms {
    this.observePrograms ??= new ObservePrograms();
    return this.observePrograms;
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
      'vc_pkt_rule',
      'vc_veth_stats',
      (object, program, where) => object.attachTcx(program, Number(where), program === 'vc_veth_ingress' ? 'ingress' : 'egress'),
    );
    return this.vethPrograms;
  }

  /** cgroup/connect4 + sendmsg4 + recvmsg4: the target's DNS queries to a fake resolver. */
  get dns(): DnsPrograms {
    this.dnsPrograms ??= new SlottedPrograms(
      'dns',
      ['vc_dns_connect4', 'vc_dns_sendmsg4', 'vc_dns_recvmsg4'],
      { slots: 'dns_slots', rules: 'dns_rules', stats: 'dns_stats' },
      'vc_dns_rule',
      'vc_dns_stats',
    );
    return this.dnsPrograms;
  }

  /** The original destination of a connection the connect4 / connect6 program redirected (client as seen on accept()). */
  lookupFlow(clientAddress: string, clientPort: number): FlowRecord | null {
    // Called for every proxied connection: the codecs are built once.
    this.flowCodecs ??= {
      key: structCodec(this.connect.object, 'vc_flow_key'),
      key6: structCodec(this.connect.object, 'vc_flow6_key'),
      flow: structCodec(this.connect.object, 'vc_flow'),
    };
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(clientAddress);
    const v6 = mapped ? null : ipv6Bytes(clientAddress);
    const [map, key] = v6
      ? ['flows6', this.flowCodecs.key6.encode({ addr: v6, port: clientPort })]
      : ['flows', this.flowCodecs.key.encode({ addr: ipv4ToInt(mapped?.[1] ?? clientAddress), port: clientPort })];
    const buf = this.connect.object.mapLookup(map, key);
    if (!buf) return null;
    const f = this.flowCodecs.flow.decode(buf);
    this.connect.object.mapDelete(map, key);
    const slots: number[] = [];
    for (let slot = 0; slot < 64; slot++) if (f.slots & (1n << BigInt(slot))) slots.push(slot);
    const address = v6 ? ipv6Text(f.orig_addr6) : intToIpv4(f.orig_addr);
    return { cgroupId: f.cgroup_id, slot: f.slot, slots, address, port: f.orig_port };
  }

  /** Live links this process holds (all of them die with the process). */
  liveLinks(): number {
    return loadAddon().liveLinks();
  }
}

let shared: Kernel | undefined;

/** The process's Kernel, created on first use. */
/** The program objects a Kernel loads on first use, by getter name. */
export type ProgramSet = 'packetDrop' | 'connect' | 'dns' | 'veth' | 'syscallSignal' | 'observe' | 'connLimit';

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
