// How the packet path's slot programs (bpf/queue-match.bpf.c) are given
// addresses and peers: 16 bytes each, IPv4 mapped, peers as 128-bit prefixes.
import { describe, expect, it } from 'vitest';
import { ANY_PEER, peerOfCidr } from '../../src/kernel/peer-match.js';
import { addr16, peerPrefix } from '../../src/kernel/queue-match.js';

describe('queue-match addresses', () => {
  it('maps IPv4 into IPv6 (::ffff:a.b.c.d) and keeps IPv6 as it is', () => {
    expect(addr16('10.1.2.3').toString('hex')).toBe(`${'0'.repeat(20)}ffff0a010203`);
    expect(addr16('fd00::1').toString('hex')).toBe(`fd00${'0'.repeat(26)}01`);
    expect(addr16('::ffff:10.1.2.3')).toEqual(addr16('10.1.2.3'));
  });

  it('refuses what is not an address', () => {
    expect(() => addr16('10.1.2')).toThrow(/not an IPv4 address: 10.1.2/);
    expect(() => addr16('10.1.2.300')).toThrow(/not an IPv4 address/);
  });

  it('gives an IPv4 peer 96 bits more of prefix, an IPv6 one its own, every peer none', () => {
    expect(peerPrefix(peerOfCidr('10.0.0.0/8')!)).toEqual({ addr: addr16('10.0.0.0'), prefix: 104 });
    expect(peerPrefix(peerOfCidr('172.17.0.5')!)).toEqual({ addr: addr16('172.17.0.5'), prefix: 128 });
    expect(peerPrefix(peerOfCidr('0.0.0.0/0')!)?.prefix).toBe(96);
    const v6 = peerPrefix(peerOfCidr('fd00:ab::/48')!);
    expect(v6?.prefix).toBe(48);
    expect(v6?.addr.toString('hex')).toBe(`fd0000ab${'0'.repeat(24)}`);
    expect(peerPrefix(ANY_PEER)).toBeNull();
  });
});
