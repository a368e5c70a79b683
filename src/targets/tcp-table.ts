// The TCP sockets of a container's network namespace, from /proc/PID/net/tcp
// and tcp6 (IPv4 and v4-mapped only): its listening ports, and the
// connections open now, each as inbound (to one of its listening ports) or
// outbound.
import { readFileSync } from 'node:fs';

export interface TcpConnection {
  local: number;
  localPort: number;
  remote: number;
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

/** An address of /proc/net/tcp{,6} as an IPv4 number (host order), or null for a real IPv6 address. */
function ipv4Of(hex: string): number | null {
  if (hex.length === 8) return Buffer.from(hex, 'hex').readUInt32LE(0);
  // tcp6: four 32-bit words, each in host (little-endian) order; ::ffff:a.b.c.d is 0,0,0xffff0000,addr.
  const words = [0, 8, 16, 24].map((i) => Buffer.from(hex.slice(i, i + 8), 'hex').readUInt32LE(0));
  if (words[0] === 0 && words[1] === 0 && words[2] === 0xffff0000) return words[3] ?? null;
  if (words.every((w) => w === 0)) return 0;
  return null;
}

function hostOrder(le: number): number {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(le, 0);
  return b.readUInt32BE(0);
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
      const local = ipv4Of(la as string);
      const remote = ipv4Of(ra as string);
      const localPort = Number.parseInt(lp as string, 16);
      if (state === LISTEN) listening.add(localPort);
      else if (state === ESTABLISHED && local !== null && remote !== null) {
        open.push({ local: hostOrder(local), localPort, remote: hostOrder(remote), remotePort: Number.parseInt(rp as string, 16) });
      }
    }
  }
  return {
    listening: [...listening].sort((a, b) => a - b),
    connections: open.map((c) => ({ ...c, way: listening.has(c.localPort) ? 'inbound' : 'outbound' })),
  };
}

/** The TCP table of the network namespace of process pid. */
export function tcpTableOf(pid: number): TcpTable {
  const read = (f: string) => {
    try {
      return readFileSync(`/proc/${pid}/net/${f}`, 'utf8');
    } catch {
      return '';
    }
  };
  return parseTcpTable([read('tcp'), read('tcp6')]);
}
