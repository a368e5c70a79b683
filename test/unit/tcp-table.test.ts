// The TCP table of a container's netns as the packet path reads it: addresses
// as text with their family (as the rules and the NFQUEUE reader's flow keys
// take them; v4-mapped ones are IPv4), listening ports, and each connection's way.
import { describe, expect, it } from 'vitest';
import { parseTcpTable, tcpTableOfSockets, type TcpTable } from '../../src/targets/tcp-table.js';

/** Each connection as [family, local, localPort, remote, remotePort, way]. */
const rows = (t: TcpTable) => t.connections.map((c) => [c.family, c.local, c.localPort, c.remote, c.remotePort, c.way]);
const EXPECTED = [
  [4, '172.17.0.2', 8080, '172.17.0.1', 54321, 'inbound'],
  [4, '172.17.0.2', 40000, '172.17.0.3', 5432, 'outbound'],
  [4, '172.17.0.2', 6379, '172.17.0.9', 40960, 'inbound'],
  [6, 'fe80::ff:0:1', 6379, 'fe80::ff:0:2', 40961, 'inbound'],
  [6, 'fd00:1:2::3', 50000, 'fd00:1:2::9', 5432, 'outbound'],
];

const HEAD = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';

describe('parseTcpTable', () => {
  it('reads IPv4, v4-mapped and IPv6 connections, inbound by the listening ports', () => {
    const tcp =
      HEAD +
      '   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n' +
      // 172.17.0.2:8080 <- 172.17.0.1:54321, established: accepted on 8080
      '   1: 020011AC:1F90 010011AC:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n' +
      // 172.17.0.2:40000 -> 172.17.0.3:5432, established: opened
      '   2: 020011AC:9C40 030011AC:1538 01 00000000:00000000 00:00000000 00000000     0        0 3 1\n';
    const tcp6 =
      HEAD +
      // [::ffff:172.17.0.2]:6379 listening, and a v4-mapped connection from 172.17.0.9 to it
      '   0: 00000000000000000000000000000000:18EB 00000000000000000000000000000000:0000 0A 0 0 0 0 0 0 4 1\n' +
      '   1: 0000000000000000FFFF0000020011AC:18EB 0000000000000000FFFF0000090011AC:A000 01 0 0 0 0 0 0 5 1\n' +
      // a real IPv6 connection, [fe80::ff:0:1]:6379 <- [fe80::ff:0:2]:40961
      '   2: 000080FE00000000FF00000001000000:18EB 000080FE00000000FF00000002000000:A001 01 0 0 0 0 0 0 6 1\n' +
      // [fd00:1:2::3]:50000 -> [fd00:1:2::9]:5432, opened
      '   3: 010000FD000002000000000003000000:C350 010000FD000002000000000009000000:1538 01 0 0 0 0 0 0 7 1\n';
    const t = parseTcpTable([tcp, tcp6]);
    expect(t.listening).toEqual([6379, 8080]);
    expect(rows(t)).toEqual(EXPECTED);
  });
});

describe('tcpTableOfSockets', () => {
  const v4 = (a: string) => Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...a.split('.').map(Number)]);
  const v6 = (hex: string) => Buffer.from(hex, 'hex');
  it('reads a sock_diag dump as the /proc table: v4-mapped is IPv4, inbound by the listening ports', () => {
    const t = tcpTableOfSockets({
      listening: [6379, 8080],
      open: [
        [v4('172.17.0.2'), 8080, v4('172.17.0.1'), 54321],
        [v4('172.17.0.2'), 40000, v4('172.17.0.3'), 5432],
        [v6('fe80000000000000000000ff00000001'), 6379, v6('fe80000000000000000000ff00000002'), 40961],
        [v6('fd000001000200000000000000000003'), 50000, v6('fd000001000200000000000000000009'), 5432],
        // a family mismatch cannot be a connection: left out
        [v4('172.17.0.2'), 1, v6('fd000001000200000000000000000009'), 2],
      ],
    });
    expect(t.listening).toEqual([6379, 8080]);
    // The same connections as the /proc test's, less its v4-mapped one.
    expect(rows(t)).toEqual(EXPECTED.filter((r) => r[4] !== 40960));
  });
});
