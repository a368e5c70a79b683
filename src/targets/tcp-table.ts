// The TCP sockets of a container's network namespace: its listening ports, and
// the connections open now, each as inbound (to one of its listening ports) or
// outbound; from sock_diag (tcpTableOfSockets: queue-slots.ts asks on a socket
// kept in the netns) or from /proc/PID/net/tcp and tcp6. A v4-mapped connection
// of an IPv6 socket is an IPv4 one (its packets are IPv4 packets).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { intToIpv4 } from '../kernel/kernel.js';
import type { TcpSockets } from '../kernel/netns-socket.js';
import { ipv6Text } from '../kernel/peer-match.js';

export interface TcpConnection {
  /** 4: IPv4 (v4-mapped included); 6: IPv6. */
  family: 4 | 6;
  /** Addresses as text: dotted IPv4, or IPv6 in its canonical short form. */
  local: string;
  localPort: number;
  remote: string;
  remotePort: number;
  /** inbound: accepted on a listening port of the target; outbound: opened by it. */
  way: 'inbound' | 'outbound';
}

export interface TcpTable {
  listening: number[];
  connections: TcpConnection[];
}

const LISTEN = 0x0a;
const ESTABLISHED = 0x01;

/**
 * An address of /proc/net/tcp{,6} as [family, text]. The file prints each 32-bit word of the
 * address as the little-endian integer it is in memory ("0100007F" for 127.0.0.1): read it back that way.
 */
function addressOf(hex: string): [4 | 6, string] | null {
  if (hex.length === 8) return [4, intToIpv4(Buffer.from(hex, 'hex').readUInt32LE(0))];
  if (hex.length !== 32) return null;
  const bytes = Buffer.alloc(16);
  for (let i = 0; i < 4; i++) bytes.writeUInt32BE(Buffer.from(hex.slice(i * 8, i * 8 + 8), 'hex').readUInt32LE(0), i * 4);
  return addressOfBytes(bytes);
}

/** An address of 16 bytes as [family, text]: ::ffff:a.b.c.d is IPv4 (a connection of a dual-stack socket). */
function addressOfBytes(bytes: Buffer): [4 | 6, string] {
  if (bytes.readUInt32BE(0) === 0 && bytes.readUInt32BE(4) === 0 && bytes.readUInt32BE(8) === 0xffff) {
    return [4, intToIpv4(bytes.readUInt32BE(12))];
  }
  return [6, ipv6Text(bytes)];
}

/** The table from a sock_diag dump (kernel/netns-socket.ts tcpSockets). */
export function tcpTableOfSockets(s: TcpSockets): TcpTable {
  const listening = new Set(s.listening);
  const connections: TcpConnection[] = [];
  for (const [la, localPort, ra, remotePort] of s.open) {
    const [family, local] = addressOfBytes(la);
    const [remoteFamily, remote] = addressOfBytes(ra);
    if (family !== remoteFamily) continue;
    connections.push({ family, local, localPort, remote, remotePort, way: listening.has(localPort) ? 'inbound' : 'outbound' });
  }
  return { listening: s.listening, connections };
}

export function parseTcpTable(texts: readonly string[]): TcpTable {
  const listening = new Set<number>();
  const open: Omit<TcpConnection, 'way'>[] = [];
  for (const text of texts) {
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      const [la, lp] = (f[1] as string).split(':');
      const [ra, rp] = (f[2] as string).split(':');
      const state = Number.parseInt(f[3] as string, 16);
      const localPort = Number.parseInt(lp as string, 16);
      if (state === LISTEN) listening.add(localPort);
      else if (state === ESTABLISHED) {
        const local = addressOf(la as string);
        const remote = addressOf(ra as string);
        if (!local || !remote || local[0] !== remote[0]) continue;
        open.push({ family: local[0], local: local[1], localPort, remote: remote[1], remotePort: Number.parseInt(rp as string, 16) });
      }
    }
  }
  return {
    listening: [...listening].sort((a, b) => a - b),
    connections: open.map((c) => ({ ...c, way: listening.has(c.localPort) ? 'inbound' : 'outbound' })),
  };
}

/**
 * The TCP table of the network namespace of process pid. Read off the event loop: the kernel
 * walks every netns's sockets to make the file (2 ms here), time a load or a proxy needs.
 */
export async function tcpTableOf(pid: number): Promise<TcpTable> {
  const read = (f: string) => readFile(`/proc/${pid}/net/${f}`, 'utf8').catch(() => '');
  return parseTcpTable(await Promise.all([read('tcp'), read('tcp6')]));
}

/** Whether the network namespace of process pid has an IPv6 address on an interface other than lo. */
export function hasIpv6(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/net/if_inet6`, 'utf8')
      .split('\n')
      .some((l) => l.trim() !== '' && l.trim().split(/\s+/)[5] !== 'lo');
  } catch {
    return false;
  }
}
