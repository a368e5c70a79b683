// The packet path's iptables matches per family: a peer's rules go to its
// family's tables only (an IPv6 peer never widens the IPv4 rules, nor the
// reverse), every peer's to both when the netns has IPv6; connections open
// at inject are matched in their own family.
import { describe, expect, it } from 'vitest';
import { redirectSources } from '../../src/datapath/inbound-proxy.js';
import { connectionsInScope, queueMatches } from '../../src/datapath/packet-path.js';
import { ANY_PEER, peerCidr, peerCovers, peerCoversAddress, peerOfCidr, type PeerMatch } from '../../src/kernel/peer-match.js';
import type { TcpTable } from '../../src/targets/tcp-table.js';

const table: TcpTable = {
  listening: [8080],
  connections: [
    { family: 4, local: '172.18.0.2', localPort: 40000, remote: '172.18.0.3', remotePort: 5432, way: 'outbound' },
    { family: 6, local: 'fd00:1::2', localPort: 40001, remote: 'fd00:1::3', remotePort: 5432, way: 'outbound' },
    { family: 6, local: 'fd00:1::2', localPort: 8080, remote: 'fd00:2::9', remotePort: 50000, way: 'inbound' },
  ],
};
const peer = (c: string) => peerOfCidr(c) as PeerMatch;
const base = { connections: 'all' as const, hooks: 'both' as const, newOutbound: 'packets' as const };

describe('packet path rules per family', () => {
  it('peerCidr and peerCovers keep to the peer family', () => {
    expect(peerCidr(peer('fd00:1::/64'))).toBe('fd00:1::/64');
    expect(peerCidr(peer('fd00:1::3'))).toBe('fd00:1::3/128');
    expect(peerCidr(peer('10.1.2.3/8'))).toBe('10.0.0.0/8');
    expect(peerCidr(peer('::/0'))).toBeNull();
    expect(peerCidr(ANY_PEER)).toBeNull();
    expect(peerCovers(peer('fd00:1::/64'), 6, 'fd00:1::3')).toBe(true);
    expect(peerCovers(peer('fd00:1::/64'), 6, 'fd00:2::3')).toBe(false);
    expect(peerCovers(peer('fd00:1::/64'), 4, '172.18.0.3')).toBe(false);
    expect(peerCovers(peer('172.18.0.0/16'), 6, 'fd00:1::3')).toBe(false);
    expect(peerCovers(ANY_PEER, 6, 'fd00:1::3')).toBe(true);
  });

  it('peerCoversAddress takes the family from the address as a socket reports it (v4-mapped is IPv4)', () => {
    expect(peerCoversAddress(peer('172.18.0.0/16'), '172.18.0.3')).toBe(true);
    expect(peerCoversAddress(peer('172.18.0.0/16'), '::ffff:172.18.0.3')).toBe(true);
    expect(peerCoversAddress(peer('172.18.0.0/16'), '172.19.0.3')).toBe(false);
    expect(peerCoversAddress(peer('fd00:1::/64'), 'fd00:1::3')).toBe(true);
    expect(peerCoversAddress(peer('fd00:1::/64'), '::ffff:172.18.0.3')).toBe(false);
  });

  it('an IPv6 peer makes IPv6 rules only, with its CIDR', () => {
    const { rules } = queueMatches(table, { ...base, peers: [peer('fd00:1::/64')] }, false);
    expect(rules[4]).toEqual({ output: [], input: [] });
    expect(rules[6].output.length).toBeGreaterThan(0);
    // Every queueing rule names the peer (RETURN rules for the listening ports aside).
    for (const r of [...rules[6].output, ...rules[6].input].filter((x) => !x.includes('RETURN'))) {
      expect(r.join(' ')).toMatch(/-[sd] fd00:1::\/64/);
    }
  });

  it('an IPv4 peer makes IPv4 rules only; no peer makes both when the netns has IPv6, IPv4 only when not', () => {
    const v4 = queueMatches(table, { ...base, peers: [peer('172.18.0.0/16')] }, true).rules;
    expect(v4[6]).toEqual({ output: [], input: [] });
    expect(v4[4].output.some((r) => r.includes('172.18.0.0/16'))).toBe(true);
    const any6 = queueMatches(table, { ...base, peers: [ANY_PEER] }, true).rules;
    expect(any6[4].output).toEqual(any6[6].output);
    expect(any6[4].output.length).toBeGreaterThan(0);
    const any4 = queueMatches(table, { ...base, peers: [ANY_PEER] }, false).rules;
    expect(any4[6]).toEqual({ output: [], input: [] });
  });

  it('open outbound connections are matched one by one in their own family', () => {
    const { rules } = queueMatches(table, { ...base, newOutbound: 'proxy', peers: [ANY_PEER], port: 5432 }, true);
    expect(rules[4].output.filter((r) => r.includes('--sport') && r.includes('40000'))).toHaveLength(1);
    expect(rules[6].output.map((r) => r.join(' '))).toContain('! -o lo -p tcp -s fd00:1::2 -d fd00:1::3 --sport 40001 --dport 5432');
    expect(rules[6].input.map((r) => r.join(' '))).toContain('! -i lo -p tcp -s fd00:1::3 -d fd00:1::2 --sport 5432 --dport 40001');
  });

  it('connectionsInScope takes IPv6 connections by an IPv6 peer, not by an IPv4 one', () => {
    expect(connectionsInScope(table, { connections: 'all', peers: [peer('fd00::/16')] }).map((c) => c.localPort)).toEqual([40001, 8080]);
    expect(connectionsInScope(table, { connections: 'inbound', peers: [peer('fd00:2::/32')] }).map((c) => c.remotePort)).toEqual([50000]);
    expect(connectionsInScope(table, { connections: 'all', peers: [peer('172.18.0.3')] }).map((c) => c.localPort)).toEqual([40000]);
    expect(connectionsInScope(table, { connections: 'all', peers: [ANY_PEER] })).toHaveLength(3);
  });
});

describe('inbound REDIRECT sources per family', () => {
  it("takes each peer's CIDR in its family, every source for a whole family, IPv6 only with IPv6 in the netns or an IPv6 peer", () => {
    expect(redirectSources([ANY_PEER], true)).toEqual({ 4: [], 6: [] });
    expect(redirectSources([ANY_PEER], false)).toEqual({ 4: [] });
    expect(redirectSources([peer('fd00:1::/64')], false)).toEqual({ 6: ['fd00:1::/64'] });
    // A container peer: its IPv4 and IPv6 addresses, each in its own table.
    expect(redirectSources([peer('172.18.0.3'), peer('fd00:1::3')], true)).toEqual({ 4: ['172.18.0.3/32'], 6: ['fd00:1::3/128'] });
    expect(redirectSources([peer('172.18.0.3'), ANY_PEER], true)).toEqual({ 4: [], 6: [] });
  });
});
