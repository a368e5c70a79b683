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

/**
 * An address of /proc/net/tcp{,6} as an IPv4 number (host order: 127.0.0.1 is 0x7f000001), or
 * null for a real IPv6 address. The file prints each 32-bit word of the address as the
 * little-endian integer it is in memory ("0100007F" for 127.0.0.1): read it back that way.
 */
function ipv4Of(hex: string): number | null {
  if (hex.length === 8) return Buffer.from(hex, 'hex').readUInt32LE(0);
  // tcp6: four 32-bit words, each printed as the little-endian integer it is in memory.
  const words = [0, 8, 16, 24].map((i) => Buffer.from(hex.slice(i, i + 8), 'hex').readUInt32LE(0));
  // ::ffff:a.b.c.d: the third word is printed "FFFF0000" (bytes 00 00 ff ff), 0x0000ffff read back this way.
  if (words[0] === 0 && words[1] === 0 && words[2] === 0x0000ffff) return words[3] ?? null;
  if (words.every((w) => w === 0)) return 0;
  return null;
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
        open.push({ local, localPort, remote, remotePort: Number.parseInt(rp as string, 16) });
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
