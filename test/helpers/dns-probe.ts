// Lookups from inside a container, four ways, for the dns fault: glibc's
// getaddrinfo (dns.lookup), c-ares (dns.Resolver, connected UDP), a raw query on
// an unconnected UDP socket (sendto: the sendmsg4 path; we also see the reply's
// source), and a raw query over TCP. Runs with the node of the http-server image.
import type { StartedTestContainer } from 'testcontainers';

export interface DnsProbe {
  /** dns.lookup: an address, or the error code (ENOTFOUND, EAI_AGAIN). */
  lookup: string;
  /** dns.Resolver.resolve4: an address, or the error code (ENOTFOUND, ESERVFAIL, ETIMEOUT). */
  resolve: string;
  /** Unconnected UDP: the rcode (0, 2, 3) or 'timeout', and where the reply came from. */
  udp: string;
  udpFrom: string;
  /** TCP: the rcode or 'timeout'. */
  tcp: string;
  ms: { lookup: number; resolve: number; udp: number; tcp: number };
}

const SCRIPT = String.raw`
const dns = require('dns'), dgram = require('dgram'), net = require('net');
const name = process.argv[1];
const q = Buffer.concat([Buffer.from([0x4a, 0x11, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
  ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
const timed = (p) => { const t0 = Date.now(); return p.then((v) => [v, Date.now() - t0]); };
const rcodeA = (m) => String(m[3] & 15) + (m[3] & 15 ? '' : ':' + m.subarray(m.length - 4).join('.'));
const lookup = () => new Promise((r) => dns.lookup(name, { family: 4 }, (e, a) => r(e ? e.code : a)));
const resolve = () => new Promise((r) => new dns.Resolver({ timeout: 700, tries: 1 }).resolve4(name, (e, a) => r(e ? e.code : a[0])));
const udp = () => new Promise((r) => {
  const s = dgram.createSocket('udp4');
  const t = setTimeout(() => { s.close(); r(['timeout', '']); }, 1500);
  s.on('message', (m, from) => { clearTimeout(t); s.close(); r([rcodeA(m), from.address + ':' + from.port]); });
  s.send(q, 53, '127.0.0.11');
});
const tcp = () => new Promise((r) => {
  const s = net.connect(53, '127.0.0.11'); let acc = Buffer.alloc(0);
  const t = setTimeout(() => { s.destroy(); r('timeout'); }, 1500);
  s.on('data', (d) => { acc = Buffer.concat([acc, d]); if (acc.length >= 2 + acc.readUInt16BE(0)) { clearTimeout(t); s.destroy(); r(rcodeA(acc.subarray(2))); } });
  s.on('error', (e) => { clearTimeout(t); r(e.code); });
  const l = Buffer.alloc(2); l.writeUInt16BE(q.length); s.write(Buffer.concat([l, q]));
});
(async () => {
  const [l, lm] = await timed(lookup()), [rs, rm] = await timed(resolve()), [[u, from], um] = await timed(udp()), [tc, tm] = await timed(tcp());
  console.log(JSON.stringify({ lookup: l, resolve: rs, udp: u, udpFrom: from, tcp: tc, ms: { lookup: lm, resolve: rm, udp: um, tcp: tm } }));
})();
`;

export async function dnsProbe(c: StartedTestContainer, name: string): Promise<DnsProbe> {
  // getaddrinfo: one try of 1 s per nameserver, so a dropped query costs about 1 s, not 10.
  const r = await c.exec(['node', '-e', SCRIPT, name], { env: { RES_OPTIONS: 'timeout:1 attempts:1' } });
  const line = r.output.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as DnsProbe;
  } catch {
    throw new Error(`dns probe in ${c.getName()} failed (${r.exitCode}): ${r.output}`);
  }
}

/** n lookups of one name in a row through c-ares (one query each): the address or the error code of each. */
export async function resolveMany(c: StartedTestContainer, name: string, n: number): Promise<string[]> {
  const script = String.raw`
const dns = require('dns');
const [name, n] = [process.argv[1], Number(process.argv[2])];
const r = new dns.Resolver({ timeout: 700, tries: 1 });
(async () => {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await new Promise((ok) => r.resolve4(name, (e, a) => ok(e ? e.code : a[0]))));
  console.log(JSON.stringify(out));
})();`;
  const r = await c.exec(['node', '-e', script, name, String(n)]);
  return JSON.parse(r.output.trim().split('\n').pop() ?? '') as string[];
}
