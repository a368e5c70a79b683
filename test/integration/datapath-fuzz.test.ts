// A hostile target against the data path: thousands of generated malformed,
// huge, truncated and split HTTP requests and DNS messages (fast-check, seeded)
// sent over loopback to the real HTTP policy (behind the real TcpProxy) and
// the real fake resolver, and from inside a target container through the
// real http and dns faults (last describe). The test process must stay up (an uncaught error
// fails the run), keep answering well-formed requests, and its heap must not
// grow with the number of cases; a peer that trickles headers or sits idle on
// a DNS connection is cut.
import dgram from 'node:dgram';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { DNS_LIMITS, FakeDns, type DnsCounters } from '../../src/datapath/fake-dns.js';
import { httpPolicy } from '../../src/datapath/http-policy.js';
import { routeThrough } from '../../src/datapath/proxy-chain.js';
import { TcpProxy } from '../../src/datapath/tcp-proxy.js';
import { ipOf, startHttpServer, stopAll } from '../helpers/containers.js';
import { gatewayOf, listeningPorts } from '../helpers/target-info.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMB = (): number => {
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

const SEED = 20261201;
const RUNS = 40; // batches
const BATCH = 50; // cases per batch: 2000 cases per protocol

/** Sends the chunks (with pauses between), half-closes or not, and waits for the close or gives up. */
async function sendRaw(port: number, chunks: Buffer[], end: boolean, waitMs = 1500): Promise<Buffer> {
  const s = net.connect(port, '127.0.0.1');
  const got: Buffer[] = [];
  let size = 0;
  s.on('data', (d: Buffer) => {
    if (size < 4096) got.push(d);
    size += d.length;
  });
  s.on('error', () => {});
  const closed = once(s, 'close').catch(() => undefined);
  try {
    await once(s, 'connect');
    for (const c of chunks) if (!s.destroyed) s.write(c);
    if (end && !s.destroyed) s.end();
  } catch {
    // refused or reset: what a hostile peer may well get
  }
  await Promise.race([closed, new Promise((r) => setTimeout(r, waitMs))]);
  s.destroy();
  return Buffer.concat(got);
}

function split(buf: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, buf.length]) {
    if (c > prev) out.push(buf.subarray(prev, c));
    prev = c;
  }
  return out;
}

const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}$/);
const anyText = (max: number) => fc.string({ unit: 'binary', maxLength: max }).map((s) => Buffer.from(s, 'latin1'));

/** An HTTP request from a hostile client: mostly almost right, sometimes garbage after a method. */
const httpCaseOf = (hugeSizes: number[]) =>
  fc
    .record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'TRACE'),
      path: fc.oneof(
        { arbitrary: fc.constantFrom('/', '/fault', '/x?a=b'), weight: 3 },
        { arbitrary: fc.webPath(), weight: 3 },
        { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `/${s}`), weight: 1 },
      ),
      version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/9.9', 'HTTP/1.1 extra', ''),
      headers: fc.array(
        fc.tuple(
          fc.oneof({ arbitrary: token, weight: 6 }, { arbitrary: fc.string({ unit: 'binary', maxLength: 12 }), weight: 1 }),
          fc.oneof(
            { arbitrary: fc.string({ maxLength: 60 }).map((v) => v.replace(/[\r\n]/g, '')), weight: 6 },
            { arbitrary: fc.string({ unit: 'binary', maxLength: 60 }), weight: 1 },
          ),
        ),
        { maxLength: 8 },
      ),
      framing: fc.constantFrom('none', 'length', 'wrong-length', 'chunked', 'bad-chunked', 'both'),
      body: anyText(200),
      huge: fc.constantFrom(...hugeSizes),
      hugeWhere: fc.constantFrom('header', 'body', 'path'),
      garbage: anyText(300),
      shape: fc.constantFrom('request', 'request', 'request', 'truncated', 'garbage', 'pipelined'),
      cut: fc.nat(),
      cuts: fc.array(fc.nat(), { maxLength: 6 }),
      end: fc.boolean(),
    })
    .map((c) => {
      const lines = [
        `${c.method} ${c.hugeWhere === 'path' && c.huge ? `/${'a'.repeat(c.huge)}` : c.path} ${c.version}`.trimEnd(),
        'Host: backend',
      ];
      for (const [k, v] of c.headers) lines.push(`${k}: ${v}`);
      if (c.hugeWhere === 'header' && c.huge) lines.push(`X-Huge: ${'h'.repeat(c.huge)}`);
      let body = c.hugeWhere === 'body' && c.huge ? Buffer.alloc(c.huge, 98) : c.body;
      if (c.framing === 'length' || c.framing === 'both') lines.push(`Content-Length: ${body.length}`);
      if (c.framing === 'wrong-length') lines.push(`Content-Length: ${body.length + 1 + (c.cut % 1000)}`);
      if (c.framing === 'chunked' || c.framing === 'bad-chunked' || c.framing === 'both') {
        lines.push('Transfer-Encoding: chunked');
        body = Buffer.concat([
          Buffer.from(`${c.framing === 'bad-chunked' ? 'zz' : body.length.toString(16)}\r\n`),
          body,
          Buffer.from('\r\n0\r\n\r\n'),
        ]);
      }
      const req = Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
      let bytes: Buffer;
      if (c.shape === 'truncated') bytes = req.subarray(0, Math.max(16, c.cut % req.length));
      else if (c.shape === 'garbage') bytes = Buffer.concat([Buffer.from(`${c.method} /`), c.garbage]);
      else if (c.shape === 'pipelined')
        bytes = Buffer.concat([req, req, Buffer.from(`${c.method} / HTTP/1.1\r\nHost: backend\r\n\r\n`), c.garbage]);
      else bytes = req;
      return { chunks: split(bytes, c.cuts), end: c.end };
    });
const httpCase = httpCaseOf([0, 0, 0, 0, 70_000, 300_000]); // beyond maxHeaderSize (64 KiB)

describe('a hostile target against the HTTP policy', () => {
  let upstream: http.Server;
  let proxy: TcpProxy;
  let port: number;
  const policy = httpPolicy(
    { matches: (req) => req.url === '/fault', abort: { status: 503, body: 'injected' } },
    { headersTimeoutMs: 1000 },
  );

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const up = upstream.address() as net.AddressInfo;
    proxy = new TcpProxy({
      host: '127.0.0.1',
      lookup: () => routeThrough({ address: '127.0.0.1', port: up.port }, []),
      open: (relay) => policy.open(relay, proxy),
    });
    port = (await proxy.listen()).port;
  });
  afterAll(async () => {
    await proxy?.close();
    await policy.close?.();
    upstream?.closeAllConnections();
    upstream?.close();
  });

  const healthy = async () => {
    const r = await sendRaw(port, [Buffer.from('GET /fault HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n')], false);
    return r.toString('latin1').split('\r\n')[0];
  };

  it('survives 2000 generated malformed, huge, truncated and split requests with a flat heap', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(httpCase, { minLength: BATCH, maxLength: BATCH }),
        async (b) => void (await Promise.all(b.map((c) => sendRaw(port, c.chunks, c.end)))),
      ),
      { seed: SEED + 1, numRuns: 4 },
    );
    const before = heapMB();
    const requestsBefore = policy.counters.httpRequests;
    await fc.assert(
      fc.asyncProperty(fc.array(httpCase, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        await Promise.all(batch.map((c) => sendRaw(port, c.chunks, c.end)));
        expect(await healthy()).toBe('HTTP/1.1 503 Service Unavailable'); // still up, still applying the fault
      }),
      { seed: SEED, numRuns: RUNS },
    );
    const after = heapMB();
    const requests = policy.counters.httpRequests - requestsBefore;
    console.log(
      `http fuzz: ${RUNS * BATCH} cases, ${requests} requests parsed, ${proxy.counters.connections} connections; heapUsed ${before.toFixed(1)} MB -> ${after.toFixed(1)} MB after gc`,
    );
    expect(requests).toBeGreaterThan(RUNS); // the well-formed ones went through the policy
    expect(after - before).toBeLessThan(8);
  }, 300_000);

  it('answers a peer that trickles its headers 408 and closes it; an idle kept-alive connection stays', async () => {
    const slow = net.connect(port, '127.0.0.1');
    slow.on('error', () => {});
    const got: Buffer[] = [];
    slow.on('data', (d) => got.push(d));
    const t0 = performance.now();
    slow.write('GET / HTTP/1.1\r\nHost: backend\r\n');
    const trickle = setInterval(() => !slow.destroyed && slow.write('X-A: b\r\n'), 100);
    const closedIn = await Promise.race([
      once(slow, 'close').then(() => performance.now() - t0),
      new Promise<number>((r) => setTimeout(() => r(-1), 5000)),
    ]);
    clearInterval(trickle);
    slow.destroy();

    const idle = net.connect(port, '127.0.0.1');
    idle.on('error', () => {});
    idle.write('GET / HTTP/1.1\r\nHost: backend\r\n\r\n');
    await once(idle, 'data');
    await new Promise((r) => setTimeout(r, 2500)); // idle beyond the headers timeout
    const stillOpen = !idle.destroyed && !idle.readableEnded;
    idle.destroy();
    console.log(`http slow headers: closed after ${closedIn.toFixed(0)} ms (headers timeout 1000 ms)`);
    expect(Buffer.concat(got).toString().split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
    expect(closedIn).toBeGreaterThan(900);
    expect(closedIn).toBeLessThan(2500);
    expect(stillOpen).toBe(true);
  });
});

/** A DNS message from a hostile client: valid queries with odd names, truncated ones, random bytes. */
const dnsCase = fc
  .record({
    id: fc.integer({ min: 0, max: 0xffff }),
    names: fc.array(
      fc.oneof(fc.domain(), fc.string({ unit: 'binary', maxLength: 80 }), fc.constantFrom('x.fault', 'ok.test', '', '.', '..')),
      { minLength: 0, maxLength: 4 },
    ),
    type: fc.constantFrom('A', 'AAAA', 'TXT', 'ANY', 'MX'),
    random: anyText(600),
    huge: fc.constantFrom(0, 0, 0, 4000, 65000),
    shape: fc.constantFrom('query', 'query', 'truncated', 'random', 'flipped'),
    cut: fc.nat(),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
    tcp: fc.boolean(),
    lengthLie: fc.constantFrom(0, 0, 0, 1, -1, 1000),
    cuts: fc.array(fc.nat(), { maxLength: 4 }),
  })
  .map((c) => {
    let q: Buffer;
    try {
      q = dnsPacket.encode({
        type: 'query',
        id: c.id,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: c.names.map((name) => ({ type: c.type, name })) as dnsPacket.Question[],
      });
    } catch {
      q = c.random;
    }
    if (c.shape === 'truncated') q = q.subarray(0, c.cut % (q.length + 1));
    if (c.shape === 'random') q = c.random;
    if (c.shape === 'flipped') {
      q = Buffer.from(q);
      for (const [at, v] of c.flips) if (q.length) q[at % q.length] = v;
    }
    if (c.huge) q = Buffer.concat([q, Buffer.alloc(c.huge, 7)]);
    return { q, tcp: c.tcp, lengthLie: c.lengthLie, cuts: c.cuts };
  });

describe('a hostile target against the fake resolver', () => {
  let ns: dgram.Socket;
  let dns: FakeDns;
  let at: { address: string; port: number };
  const counters: DnsCounters = { dnsQueries: 0, dnsFaulted: 0, dnsForwarded: 0, dnsForwardFailed: 0, dnsIgnored: 0 };
  const client = dgram.createSocket('udp4');

  beforeAll(async () => {
    // The "real nameserver": answers every query with its own bytes, marked as a response.
    ns = dgram.createSocket('udp4');
    ns.on('message', (m, r) => {
      const reply = Buffer.from(m);
      if (reply.length > 2) reply[2] = (reply[2] as number) | 0x80;
      ns.send(reply, r.port, r.address);
    });
    ns.bind(0, '127.0.0.1');
    await once(ns, 'listening');
    const nsPort = (ns.address() as net.AddressInfo).port;
    dns = new FakeDns({
      host: '127.0.0.1',
      nameserver: { address: '127.0.0.1', port: nsPort },
      clients: new Set(['127.0.0.1']),
      answerFor: (name) => (name.endsWith('.fault') ? 'NXDOMAIN' : null),
      forward: (_proto, query) =>
        new Promise((resolve) => {
          const s = dgram.createSocket('udp4');
          const done = (r: Buffer | null) => {
            clearTimeout(t);
            s.close();
            resolve(r);
          };
          const t = setTimeout(() => done(null), 1000);
          s.on('message', (m) => done(m));
          s.on('error', () => done(null));
          s.send(query, nsPort, '127.0.0.1');
        }),
      counters,
    });
    at = await dns.listen();
    client.bind(0, '127.0.0.1');
    await once(client, 'listening');
  });
  afterAll(async () => {
    await dns?.close();
    ns?.close();
    client.close();
  });

  const send = async (c: { q: Buffer; tcp: boolean; lengthLie: number; cuts: number[] }) => {
    if (!c.tcp) {
      if (c.q.length <= 65507) client.send(c.q, at.port, at.address);
      return;
    }
    const len = Buffer.alloc(2);
    len.writeUInt16BE(Math.max(0, Math.min(0xffff, c.q.length + c.lengthLie)));
    await sendRaw(at.port, split(Buffer.concat([len, c.q]), c.cuts), true, 300);
  };
  const lookup = async (name: string): Promise<number | null> => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    const reply = new Promise<Buffer | null>((resolve) => {
      s.once('message', (m) => resolve(m));
      setTimeout(() => resolve(null), 2000);
    });
    s.send(dnsPacket.encode({ type: 'query', id: 7, questions: [{ type: 'A', name }] }), at.port, at.address);
    const r = await reply;
    s.close();
    return r ? r.readUInt16BE(2) & 0xf : null;
  };

  it('survives 2000 generated malformed, huge, truncated and split messages (UDP and TCP) with a flat heap', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(dnsCase, { minLength: BATCH, maxLength: BATCH }), async (b) => void (await Promise.all(b.map(send)))),
      { seed: SEED + 1, numRuns: 4 },
    );
    await new Promise((r) => setTimeout(r, 1200)); // forwards in flight time out
    const before = heapMB();
    const q0 = counters.dnsQueries;
    await fc.assert(
      fc.asyncProperty(fc.array(dnsCase, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        await Promise.all(batch.map(send));
        expect(await lookup('still.fault')).toBe(3); // NXDOMAIN: still up, still failing the names
      }),
      { seed: SEED, numRuns: RUNS },
    );
    await new Promise((r) => setTimeout(r, 1200));
    const after = heapMB();
    console.log(
      `dns fuzz: ${RUNS * BATCH} cases, ${counters.dnsQueries - q0} messages answered or forwarded (${counters.dnsFaulted} faulted, ${counters.dnsForwarded} forwarded); heapUsed ${before.toFixed(1)} MB -> ${after.toFixed(1)} MB after gc`,
    );
    expect(counters.dnsQueries - q0).toBeGreaterThan(RUNS * BATCH * 0.4);
    expect(after - before).toBeLessThan(8);
  }, 300_000);

  it('closes a TCP connection that sits idle, and one that never reads what it asked for', async () => {
    const saved = DNS_LIMITS.tcpIdleMs;
    DNS_LIMITS.tcpIdleMs = 500;
    try {
      const idle = net.connect(at.port, '127.0.0.1');
      idle.on('error', () => {});
      idle.write(Buffer.from([0])); // half a length prefix, then nothing
      const t0 = performance.now();
      await once(idle, 'close');
      const idleMs = performance.now() - t0;
      expect(idleMs).toBeGreaterThan(400);
      expect(idleMs).toBeLessThan(3000);
    } finally {
      DNS_LIMITS.tcpIdleMs = saved;
    }
    // Pipelined queries never read: the server stops once its unread replies pass the cap.
    const greedy = net.connect(at.port, '127.0.0.1');
    greedy.on('error', () => {});
    await once(greedy, 'connect');
    greedy.pause();
    const q = dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: `${'a'.repeat(60)}.fault` }] });
    const framed = Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]);
    let sent = 0;
    const closed = new Promise<boolean>((r) => greedy.once('close', () => r(true)));
    while (sent < 300_000 && !greedy.destroyed) {
      greedy.write(Buffer.concat(Array.from({ length: 100 }, () => framed)));
      sent += 100;
      await new Promise((r) => setImmediate(r));
    }
    expect(await Promise.race([closed, new Promise((r) => setTimeout(() => r(false), 20_000))])).toBe(true);
  }, 60_000);
});

// What a target sends from inside its container, through the real faults: its
// HTTP to a peer is redirected by the connect program to the proxy on the
// bridge gateway (the HTTP policy parses it), its DNS to its nameserver is
// redirected to the fake resolver on the gateway; it also aims straight at the
// proxy's ports (it gets nothing: not a flow our programs redirected, nor a hop
// from another of our proxies) and at the resolver's port. The cases are generated here (seeded), sent by a node
// script in the hostile container, 50 connections at a time.
const SENDER = String.raw`
const fs = require('fs'), zlib = require('zlib'), net = require('net'), dgram = require('dgram');
const [file, peer, gateway, proxyPort, hopPort, nameserver, dnsPort] = process.argv.slice(2);
const cases = zlib.gunzipSync(Buffer.from(fs.readFileSync(file, 'utf8'), 'base64')).toString().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const out = {};
const udp = dgram.createSocket('udp4');
let udpReplies = 0;
udp.on('message', () => udpReplies++);
udp.on('error', () => {});
const tcp = (host, port, chunks, end) => new Promise((resolve) => {
  let back = 0;
  const s = net.connect(Number(port), host);
  const done = () => { clearTimeout(t); s.destroy(); resolve(back); };
  const t = setTimeout(done, 500);
  s.on('data', (d) => (back += d.length));
  s.on('error', () => {});
  s.on('close', done);
  s.on('connect', () => { for (const c of chunks) if (!s.destroyed) s.write(Buffer.from(c, 'base64')); if (end && !s.destroyed) s.end(); });
});
const to = { http: [peer, 8080], proxy: [gateway, proxyPort], hop: [gateway, hopPort], 'dns-tcp': [nameserver, 53], 'dns-udp': [nameserver, 53], 'dns-direct': [gateway, dnsPort] };
async function one(c) {
  const o = (out[c.to] ??= { cases: 0, answered: 0, bytesBack: 0 });
  o.cases++;
  const [host, port] = to[c.to];
  if (c.udp) {
    const b = Buffer.from(c.chunks[0], 'base64');
    if (b.length <= 65507) udp.send(b, Number(port), host);
    return;
  }
  const back = await tcp(host, port, c.chunks, c.end);
  o.bytesBack += back;
  if (back > 0) o.answered++;
}
(async () => {
  let i = 0;
  await Promise.all(Array.from({ length: 50 }, async () => { while (i < cases.length) await one(cases[i++]); }));
  await new Promise((r) => setTimeout(r, 1000));
  udp.close();
  console.log(JSON.stringify({ ...out, udpReplies }));
})();
`;

describe('a hostile container against the proxy and the fake resolver on its gateway', () => {
  let backend: StartedTestContainer;
  let nameserver: StartedTestContainer;
  let hostile: StartedTestContainer;
  beforeAll(async () => {
    [backend, nameserver, hostile] = await Promise.all([
      startHttpServer('fuzz-backend'),
      startHttpServer('fuzz-nameserver'),
      startHttpServer('fuzz-hostile'),
    ]);
    // The hostile container's nameserver is a container of ours that echoes each message as its
    // answer (UDP and TCP 53): forwarded junk never leaves our containers.
    const echo = `const d = require('dgram').createSocket('udp4'); d.on('message', (m, r) => { const b = Buffer.from(m); if (b.length > 2) b[2] |= 0x80; d.send(b, r.port, r.address); }); d.bind(53);
      require('net').createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(53);`;
    await nameserver.exec(['bash', '-c', `nohup node -e "${echo.replace(/"/g, '\\"')}" >/dev/null 2>&1 &`]);
    await hostile.exec(['bash', '-c', `echo nameserver ${ipOf(nameserver)} > /etc/resolv.conf`]);
  });
  afterAll(() => stopAll(backend, nameserver, hostile));

  it('sends 4000 generated malformed, huge, truncated and split requests and DNS messages from inside the container: the process stays up, its heap flat, the faults still apply', async () => {
    const gateway = await gatewayOf(hostile);
    const [tcpBefore, udpBefore] = [listeningPorts(gateway), listeningPorts(gateway, 'udp')];
    const http = await chaos.inject({
      kind: 'http',
      target: hostile,
      peer: backend,
      port: 8080,
      path: '/fault',
      abort: { status: 503, body: 'injected' },
    });
    const proxyPorts = listeningPorts(gateway).filter((p) => !tcpBefore.includes(p));
    const dns = await chaos.inject({ kind: 'dns', target: hostile, names: ['*.fault'] });
    const [dnsPort] = listeningPorts(gateway, 'udp').filter((p) => !udpBefore.includes(p));
    expect(proxyPorts).toHaveLength(2); // redirected connections, and hops from our other proxies
    expect(dnsPort).toBeGreaterThan(0);
    const health = async () => {
      const r = await hostile.exec([
        'node',
        '-e',
        `require('http').get('http://${ipOf(backend)}:8080/fault', (r) => { console.log(r.statusCode); r.resume(); }).on('error', (e) => console.log(e.code));
         require('dns').resolve4('still.fault', (e) => setTimeout(() => console.log(e ? e.code : 'resolved'), 300));`,
      ]);
      return r.output.trim().split('\n');
    };
    expect(await health()).toEqual(['503', 'ENOTFOUND']); // the faults in force, seen from inside

    const b64 = (chunks: Buffer[]) => chunks.map((c) => c.toString('base64'));
    const batch = (seed: number, n: number) => {
      const lines: string[] = [];
      fc.sample(httpCaseOf([0, 0, 0, 0, 0, 0, 0, 70_000]), { seed, numRuns: n }).forEach((c, i) => {
        lines.push(JSON.stringify({ to: i % 8 === 3 ? 'proxy' : i % 8 === 7 ? 'hop' : 'http', chunks: b64(c.chunks), end: c.end }));
      });
      fc.sample(dnsCase, { seed: seed + 1, numRuns: n }).forEach((c, i) => {
        if (c.tcp) {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(Math.max(0, Math.min(0xffff, c.q.length + c.lengthLie)));
          lines.push(JSON.stringify({ to: 'dns-tcp', chunks: b64(split(Buffer.concat([len, c.q]), c.cuts)), end: true }));
        } else lines.push(JSON.stringify({ to: i % 5 === 4 ? 'dns-direct' : 'dns-udp', udp: true, chunks: b64([c.q]) }));
      });
      return gzipSync(lines.join('\n')).toString('base64'); // as text: the copy into the container takes strings whole
    };
    const send = async (seed: number, n: number) => {
      await hostile.copyContentToContainer([
        { content: batch(seed, n), target: '/tmp/cases.gz' },
        { content: SENDER, target: '/tmp/sender.js' },
      ]);
      const r = await hostile.exec([
        'node',
        '/tmp/sender.js',
        '/tmp/cases.gz',
        ipOf(backend),
        gateway,
        String(proxyPorts[0]),
        String(proxyPorts[1]),
        ipOf(nameserver),
        String(dnsPort),
      ]);
      expect(r.exitCode, r.output).toBe(0);
      return JSON.parse(r.output.trim().split('\n').pop() as string) as Record<
        string,
        { cases: number; answered: number; bytesBack: number }
      > & {
        udpReplies: number;
      };
    };

    await send(SEED + 2, 200); // warm-up: the parsers and pools reach their working size
    const before = heapMB();
    const s0 = { ...http.stats(), ...dns.stats() } as Record<string, number>;
    const seen = await send(SEED + 3, 2000);
    await new Promise((r) => setTimeout(r, 1200)); // forwards in flight end
    const after = heapMB();
    const s1 = { ...http.stats(), ...dns.stats() } as Record<string, number>;
    const delta = (k: string) => (s1[k] ?? 0) - (s0[k] ?? 0);
    const healthAfter = await health();
    await http.revert();
    await dns.revert();
    console.log(
      `in-container fuzz: ${JSON.stringify(seen)}; http: +${delta('httpRequests')} requests parsed, +${delta('connections')} connections carried, ` +
        `+${delta('connectsRedirected')} connects redirected, +${delta('unknownConnections')} unknown; dns: +${delta('dnsQueries')} messages, +${delta('dnsFaulted')} faulted, +${delta('dnsForwarded')} forwarded, ` +
        `+${delta('dnsIgnored')} ignored; heapUsed ${before.toFixed(1)} MB -> ${after.toFixed(1)} MB after gc`,
    );
    expect(healthAfter).toEqual(['503', 'ENOTFOUND']); // still up, still applying both faults
    // Every case went through the real path: the HTTP to the peer redirected to the policy, every one counted.
    expect(seen.http!.cases + seen.proxy!.cases + seen.hop!.cases).toBe(2000);
    expect(delta('connectsRedirected')).toBeGreaterThanOrEqual(seen.http!.cases);
    // The proxy carried no connection beyond those our programs redirected. A direct connection is
    // carried only where it reuses the source port of a redirected connect whose SYN never reached
    // the proxy (its flow record stays until then; see SECURITY.md): it reaches only what the target
    // itself had dialled, through the same faults. Where none was lost, direct ones get nothing.
    const lostRedirects = delta('connectsRedirected') - (delta('connections') - seen.proxy!.answered);
    expect(delta('connections')).toBeLessThanOrEqual(delta('connectsRedirected'));
    expect(seen.proxy!.answered).toBeLessThanOrEqual(lostRedirects);
    if (lostRedirects === 0) expect(seen.proxy!.bytesBack).toBe(0);
    expect(seen.hop!.bytesBack).toBe(0); // a hop needs our process's token
    // The direct ones are counted (a SYN lost on a loaded bridge never reaches the proxy to be counted).
    expect(delta('unknownConnections')).toBeGreaterThan((seen.proxy!.cases + seen.hop!.cases) / 2);
    expect(delta('httpRequests')).toBeGreaterThan(seen.http!.cases * 0.1); // the well-formed ones: about 15%
    expect(seen.http!.answered).toBeGreaterThan(seen.http!.cases * 0.1);
    // The DNS messages reached the fake resolver, by the redirect and straight.
    expect(delta('dnsQueries')).toBeGreaterThan(2000 * 0.4);
    expect(seen.udpReplies).toBeGreaterThan(0);
    expect(after - before).toBeLessThan(8);
  }, 300_000);
});
