// Which packets or connections a network fault applies to: direction, peer, port.
import { z } from 'zod';
import { ipv4ToInt } from '../kernel/kernel.js';
import type { ContainerRef } from '../targets/resolve-target.js';
import type { FaultContext } from './fault-kind.js';

export const direction = z
  .enum(['egress', 'ingress', 'both'], { error: 'one of "egress", "ingress", "both"' })
  .default('both');

export type Direction = z.infer<typeof direction>;

const CIDR = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/;

function isCidr(s: string): boolean {
  const m = CIDR.exec(s);
  if (!m) return false;
  try {
    ipv4ToInt(m[1] as string);
  } catch {
    return false;
  }
  return m[2] === undefined || Number(m[2]) <= 32;
}

const isContainerObject = (v: unknown): v is { getId(): string } =>
  typeof v === 'object' && v !== null && typeof (v as { getId?: unknown }).getId === 'function';

/** A container (object or "container:ID") or an IPv4 address / CIDR. */
export const peer = z.custom<ContainerRef>(
  (v) => isContainerObject(v) || (typeof v === 'string' && (isCidr(v) || /^container:[\w.-]+$/.test(v))),
  { error: 'a started container, "container:<id or name>", or an IPv4 address or CIDR such as "10.0.0.0/8"' },
);

export const port = z
  .number({ error: 'an integer port from 1 to 65535' })
  .int({ error: 'an integer port from 1 to 65535' })
  .min(1, { error: 'an integer port from 1 to 65535' })
  .max(65535, { error: 'an integer port from 1 to 65535' });

/** The share of matching packets acted on. */
export const percent = z
  .number({ error: 'a number from 0 to 100' })
  .min(0, { error: 'a number from 0 to 100' })
  .max(100, { error: 'a number from 0 to 100' });

/** Only packets of this IP protocol. */
export const protocol = z.enum(['tcp', 'udp'], { error: 'one of "tcp", "udp"' });
export type Protocol = z.infer<typeof protocol>;
export const IP_PROTOCOL: Record<Protocol, number> = { tcp: 6, udp: 17 };

export interface PeerMatch {
  /** Host-order IPv4 and mask; mask 0 matches every peer. */
  addr: number;
  mask: number;
  label: string;
}

export const ANY_PEER: PeerMatch = { addr: 0, mask: 0, label: 'any' };

function maskOf(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** The address matches a peer stands for: one per IPv4 of a container, or the CIDR. */
export async function resolvePeer(p: ContainerRef | undefined, ctx: FaultContext): Promise<PeerMatch[]> {
  if (p === undefined) return [ANY_PEER];
  if (typeof p === 'string' && !p.startsWith('container:')) {
    const [ip, bits] = p.split('/');
    const mask = maskOf(bits === undefined ? 32 : Number(bits));
    return [{ addr: (ipv4ToInt(ip as string) & mask) >>> 0, mask, label: p }];
  }
  const ref = typeof p === 'string' ? p.slice('container:'.length) : p;
  const t = await ctx.resolvePeer(ref);
  if (t.networks.length === 0) throw new Error(`peer container ${t.name} has no IPv4 address`);
  return t.networks.map((n) => ({ addr: ipv4ToInt(n.ipv4), mask: 0xffffffff, label: `${t.name}(${n.ipv4})` }));
}

/** The C side's direction bits for a direction. */
export function directionBits(d: Direction, k: { ingress: number; egress: number }): number {
  return d === 'both' ? k.ingress | k.egress : d === 'ingress' ? k.ingress : k.egress;
}

/** The fields of every per-packet fault: which share of which packets. */
export const packetFault = { percent, direction, peer: peer.optional(), port: port.optional() };
