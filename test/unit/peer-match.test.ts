// Peers as the packet and connect programs match them: IPv4 and IPv6 addresses and CIDRs.
import { describe, expect, it } from 'vitest';
import { ipv6Bytes, ipv6Text, peerOfCidr, peerRuleBytes } from '../../src/kernel/peer-match.js';

describe('peers', () => {
  it('reads IPv4 addresses and CIDRs as host-order address and mask', () => {
    expect(peerOfCidr('10.1.2.3/8')).toMatchObject({ family: 4, addr: 0x0a000000, mask: 0xff000000 });
    expect(peerOfCidr('10.1.2.3')).toMatchObject({ family: 4, addr: 0x0a010203, mask: 0xffffffff });
    const rule = peerRuleBytes(peerOfCidr('192.168.0.0/16')!);
    expect(rule.addr.toString('hex')).toBe(`c0a80000${'0'.repeat(24)}`);
    expect(rule.mask.toString('hex')).toBe(`ffff0000${'0'.repeat(24)}`);
  });

  it('reads IPv6 addresses and CIDRs as 16 network-order bytes, the address masked', () => {
    const p = peerOfCidr('fd00:ab:cd::5/48')!;
    expect(p.family).toBe(6);
    expect(p.addr6!.toString('hex')).toBe(`fd0000ab00cd${'0'.repeat(20)}`);
    expect(p.mask6!.toString('hex')).toBe(`${'f'.repeat(12)}${'0'.repeat(20)}`);
    expect(peerOfCidr('fd00::1/127')!.mask6!.toString('hex')).toBe(`${'f'.repeat(31)}e`);
    expect(peerRuleBytes(p).addr).toBe(p.addr6);
  });

  it('refuses what is not an address with a prefix in range', () => {
    for (const bad of ['10.0.0.0/33', 'fd00::/129', '300.1.1.1', 'fd00:::1', 'fd00::/x', 'db', '10.0.0.0/']) {
      expect(peerOfCidr(bad), bad).toBeNull();
    }
  });

  it('writes and reads IPv6 text both ways, with :: and a dotted tail', () => {
    for (const [text, hex] of [
      ['::1', `${'0'.repeat(31)}1`],
      ['fd00::2', `fd00${'0'.repeat(27)}2`],
      ['2001:db8:0:1:1:1:1:1', '20010db8000000010001000100010001'],
      ['::ffff:10.0.0.1', `${'0'.repeat(20)}ffff0a000001`],
    ] as const) {
      expect(ipv6Bytes(text)!.toString('hex'), text).toBe(hex);
    }
    expect(ipv6Text(ipv6Bytes('fd00:0:0:0:0:0:0:2')!)).toBe('fd00::2');
    expect(ipv6Text(ipv6Bytes('2001:db8:0:1:1:1:1:1')!)).toBe('2001:db8:0:1:1:1:1:1');
    expect(ipv6Text(ipv6Bytes('1:0:0:2:0:0:0:3')!)).toBe('1:0:0:2::3');
    expect(ipv6Bytes('10.0.0.1')).toBeNull();
  });
});
