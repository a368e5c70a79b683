// What the packet and connect programs match on: a peer as an address and a
// mask, a direction as the C side's bits, a protocol as its IP number.

export interface PeerMatch {
  /** Host-order IPv4 and mask; mask 0 matches every peer. */
  addr: number;
  mask: number;
  label: string;
}

export const ANY_PEER: PeerMatch = { addr: 0, mask: 0, label: 'any' };

export type Direction = 'egress' | 'ingress' | 'both';

/** The C side's direction bits for a direction. */
export function directionBits(d: Direction, k: { ingress: number; egress: number }): number {
  return d === 'both' ? k.ingress | k.egress : d === 'ingress' ? k.ingress : k.egress;
}

export const IP_PROTOCOL = { tcp: 6, udp: 17 } as const;
export type Protocol = keyof typeof IP_PROTOCOL;
