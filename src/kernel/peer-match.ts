// What the packet and connect programs match on: a peer as an address and a
// mask (IPv4 or IPv6), a direction as the C side's bits, a protocol as its IP number.
import { isIPv4, isIPv6 } from 'node:net';

export interface PeerMatch {
  /** 4 or 6; 0 for every peer (the masks are then 0). */
  family: 0 | 4 | 6;
  /** IPv4 (family 4): host-order address and mask. 0 otherwise. */
  addr: number;
  mask: number;
  /** IPv6 (family 6): the address and mask, 16 bytes each, network order. */
  addr6?: Buffer;
  mask6?: Buffer;
  label: string;
}

export const ANY_PEER: PeerMatch = { family: 0, addr: 0, mask: 0, label: 'any' };

export type Direction = 'egress' | 'ingress' | 'both';

/** The C side's direction bits for a direction. */
export function directionBits(d: Direction, k: { ingress: number; egress: number }): number {
  return d === 'both' ? k.ingress | k.egress : d === 'ingress' ? k.ingress : k.egress;
}

export const IP_PROTOCOL = { tcp: 6, udp: 17 } as const;
export type Protocol = keyof typeof IP_PROTOCOL;

/** The 16 bytes of an IPv6 address (`::` and a dotted IPv4 tail allowed), or null. */
export function ipv6Bytes(ip: string): Buffer | null {
  if (!isIPv6(ip)) return null;
  let s = ip.replace(/%.*$/, '');
  const v4 = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (v4) {
    const b = (v4[1] as string).split('.').map(Number);
    s = `${s.slice(0, v4.index)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const words = (x: string | undefined) => (x ? x.split(':').map((w) => Number.parseInt(w, 16)) : []);
  const h = words(head);
  const t = words(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  if (all.length !== 8) return null;
  const out = Buffer.alloc(16);
  for (const [i, w] of all.entries()) out.writeUInt16BE(w, i * 2);
  return out;
}

/** An IPv6 address as text, in its canonical short form. */
export function ipv6Text(bytes: Buffer): string {
  const words = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  // The longest run of zero words (two or more) becomes '::'.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function ipv4Int(ip: string): number {
  return ip.split('.').reduce((n, p) => n * 256 + Number(p), 0) >>> 0;
}

function maskBytes(bits: number): Buffer {
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) out[i] = bits >= (i + 1) * 8 ? 0xff : bits <= i * 8 ? 0 : (0xff << (8 - (bits - i * 8))) & 0xff;
  return out;
}

/**
 * An address or CIDR ("10.0.0.0/8", "fd00::/64", "fd00::2") as a peer, or null
 * when it is neither an IPv4 nor an IPv6 address with a prefix in range.
 */
export function peerOfCidr(cidr: string, label = cidr): PeerMatch | null {
  const slash = cidr.indexOf('/');
  const ip = slash < 0 ? cidr : cidr.slice(0, slash);
  const bitsText = slash < 0 ? undefined : cidr.slice(slash + 1);
  if (bitsText !== undefined && !/^\d{1,3}$/.test(bitsText)) return null;
  if (isIPv4(ip)) {
    const bits = bitsText === undefined ? 32 : Number(bitsText);
    if (bits > 32) return null;
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    return { family: 4, addr: (ipv4Int(ip) & mask) >>> 0, mask, label };
  }
  const bytes = ipv6Bytes(ip);
  if (!bytes) return null;
  const bits = bitsText === undefined ? 128 : Number(bitsText);
  if (bits > 128) return null;
  const mask6 = maskBytes(bits);
  const addr6 = Buffer.from(bytes.map((b, i) => b & (mask6[i] as number)));
  return { family: 6, addr: 0, mask: 0, addr6, mask6, label };
}

/** The peer as the packet programs' rule holds it: 16-byte address and mask (IPv4 in the first 4). */
export function peerRuleBytes(p: PeerMatch): { addr: Buffer; mask: Buffer } {
  if (p.family === 6) return { addr: p.addr6 as Buffer, mask: p.mask6 as Buffer };
  const addr = Buffer.alloc(16);
  const mask = Buffer.alloc(16);
  if (p.family === 4) {
    addr.writeUInt32BE(p.addr >>> 0, 0);
    mask.writeUInt32BE(p.mask >>> 0, 0);
  }
  return { addr, mask };
}

function maskBits(mask: Buffer): number {
  let bits = 0;
  for (const b of mask) for (let m = b; m & 0x80; m = (m << 1) & 0xff) bits++;
  return bits;
}

/** The families a peer covers: its own, or both for every peer. */
export function peerFamilies(p: PeerMatch): (4 | 6)[] {
  return p.family === 0 ? [4, 6] : [p.family];
}

/** The peer as iptables' -s / -d take it ("10.0.0.0/8", "fd00::/64"), or null when it covers its whole family (or every peer). */
export function peerCidr(p: PeerMatch): string | null {
  if (p.family === 6) {
    const bits = maskBits(p.mask6 as Buffer);
    return bits === 0 ? null : `${ipv6Text(p.addr6 as Buffer)}/${bits}`;
  }
  if (p.family === 0 || p.mask === 0) return null;
  let bits = 0;
  for (let m = p.mask >>> 0; m; m = (m << 1) >>> 0) bits++;
  const a = p.addr >>> 0;
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/${bits}`;
}

/** Whether a peer covers an address (dotted IPv4 or IPv6 text) of the given family. */
export function peerCovers(p: PeerMatch, family: 4 | 6, address: string): boolean {
  if (p.family === 0) return true;
  if (p.family !== family) return false;
  if (family === 4) return ((ipv4Int(address) ^ p.addr) & p.mask) >>> 0 === 0;
  const bytes = ipv6Bytes(address);
  if (!bytes) return false;
  return bytes.every((b, i) => ((b ^ (p.addr6 as Buffer)[i]!) & (p.mask6 as Buffer)[i]!) === 0);
}

/** Whether a peer covers an address as a socket reports it: dotted IPv4, IPv4 mapped in IPv6 (::ffff:a.b.c.d), or IPv6. */
export function peerCoversAddress(p: PeerMatch, address: string): boolean {
  const v4 = /^(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return v4 ? peerCovers(p, 4, v4[1] as string) : peerCovers(p, 6, address);
}

/** Whether two peers have an address in common (of one family). */
export function peersOverlap(x: PeerMatch, y: PeerMatch): boolean {
  if (x.family === 0 || y.family === 0) return true;
  if (x.family !== y.family) return false;
  if (x.family === 4) return ((x.addr ^ y.addr) & x.mask & y.mask) >>> 0 === 0;
  const [a, b, ma, mb] = [x.addr6, y.addr6, x.mask6, y.mask6] as Buffer[];
  return a!.every((v, i) => ((v ^ b![i]!) & ma![i]! & mb![i]!) === 0);
}
