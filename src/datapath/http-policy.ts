// HTTP/1.x faults on the proxy: a relayed connection whose first bytes, sent
// by the target, start an HTTP request is handed to a Node http.Server (so
// llhttp parses it, not us); each request that matches is aborted with a
// status, held, or answered with another body, and every other request is
// passed to the original destination over one upstream connection per
// target connection, as it would have gone. Other connections (a server that
// speaks first, TLS, anything not HTTP/1) are relayed untouched. After revert
// (release) the connections carry on and every request is passed as it is; a
// request held then goes on at once.
import http from 'node:http';
import type net from 'node:net';
import type { Relay } from './tcp-proxy.js';
import type { ProxyPolicy } from './proxy-policy.js';

export interface HttpFaultRule {
  /** Does this request get the fault (host/path/method match and the seeded percent)? */
  matches(req: http.IncomingMessage): boolean;
  delayMs?: number;
  abort?: { status: number; body?: string };
  body?: string;
}

const REQUEST_START = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|TRACE) \S/;

interface Conn {
  relay: Relay;
  agent: http.Agent;
  inflight: number;
}

/** One upstream connection at a time per target connection; the first is the one the relay opened. */
class ConnAgent extends http.Agent {
  constructor(
    private first: net.Socket | undefined,
    private readonly open: () => net.Socket,
  ) {
    super({ keepAlive: true, maxSockets: 1 });
  }

  override createConnection(): net.Socket {
    const s = this.first && !this.first.destroyed ? this.first : this.open();
    this.first = undefined;
    return s;
  }
}

/** What the HTTP policy counted. */
export interface HttpPolicyCounters {
  [name: string]: number;
  /** HTTP/1.x requests the target sent through the proxy. */
  httpRequests: number;
  /** Of those, matched and drawn: got the fault. */
  httpRequestsFaulted: number;
  httpRequestsAborted: number;
  httpRequestsDelayed: number;
  httpBodiesReplaced: number;
  /** Connections that were not HTTP/1 (relayed untouched). */
  plainConnections: number;
}

/**
 * How long a target may take to send a request's headers (from its first
 * byte): a peer that trickles a header forever is answered 408 and closed.
 * An idle kept-alive connection is not cut (its destination decides), nor is
 * a slow body (an upload may be slow).
 */
export const HEADERS_TIMEOUT_MS = 30_000;

export function httpPolicy(rule: HttpFaultRule, opts: { headersTimeoutMs?: number } = {}): ProxyPolicy<HttpPolicyCounters> {
  const counters: HttpPolicyCounters = {
    httpRequests: 0,
    httpRequestsFaulted: 0,
    httpRequestsAborted: 0,
    httpRequestsDelayed: 0,
    httpBodiesReplaced: 0,
    plainConnections: 0,
  };
  const conns = new WeakMap<net.Socket, Conn>();
  // Requests held (delayMs) and how to pass them on at once when the fault is reverted.
  const delayed = new Map<NodeJS.Timeout, () => void>();
  let released = false;
  const headersTimeout = opts.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  const server = http.createServer({
    requestTimeout: 0,
    headersTimeout,
    connectionsCheckingInterval: Math.min(1000, headersTimeout),
    maxHeaderSize: 64 * 1024,
  });
  server.keepAliveTimeout = 0; // the destination decides when an idle connection ends
  // The server never listens (connections are handed to it), and Node checks
  // headersTimeout only on a server that emitted 'listening': start the check.
  server.emit('listening');
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && socket.writable) {
      socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      socket.destroySoon();
      return;
    }
    socket.destroy();
  });

  server.on('request', (req, res) => {
    const conn = conns.get(req.socket);
    if (!conn) return void req.socket.destroy();
    counters.httpRequests++;
    conn.inflight++;
    res.on('close', () => conn.inflight--);
    // After revert the connections carry on, every request passed as it is.
    if (released) return pass(conn, req, res);
    let matched: boolean;
    try {
      matched = rule.matches(req);
    } catch {
      return void req.socket.destroy();
    }
    if (!matched) return pass(conn, req, res);
    counters.httpRequestsFaulted++;
    const act = () => {
      if (rule.abort) return abort(req, res, rule.abort);
      pass(conn, req, res, rule.body);
    };
    if (rule.delayMs === undefined) return act();
    counters.httpRequestsDelayed++;
    const t = setTimeout(() => {
      delayed.delete(t);
      if (!res.destroyed) act();
    }, rule.delayMs);
    // Reverted while held: the request goes on at once, unfaulted.
    delayed.set(t, () => !res.destroyed && pass(conn, req, res));
  });

  // Upgrades (WebSocket) are passed on as they are and relayed as bytes.
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const conn = conns.get(socket);
    if (!conn) return void socket.destroy();
    const up = conn.agent.createConnection({}) as net.Socket;
    const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    up.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length) up.write(head);
    up.pipe(socket).pipe(up);
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });

  function abort(req: http.IncomingMessage, res: http.ServerResponse, a: { status: number; body?: string }): void {
    counters.httpRequestsAborted++;
    req.resume();
    const body = Buffer.from(a.body ?? '');
    res.writeHead(a.status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
    res.end(body);
  }

  function pass(conn: Conn, req: http.IncomingMessage, res: http.ServerResponse, newBody?: string): void {
    const { dst } = conn.relay;
    let up: http.ClientRequest;
    try {
      up = http.request({
        host: dst.address,
        port: dst.port,
        method: req.method,
        path: req.url,
        headers: req.rawHeaders,
        setHost: false,
        agent: conn.agent,
      });
    } catch {
      // A request llhttp took but http.request refuses (a header it finds invalid): the target's connection fails.
      return void conn.relay.client.resetAndDestroy();
    }
    up.on('response', (ur) => {
      if (newBody === undefined || released) {
        res.writeHead(ur.statusCode ?? 502, ur.statusMessage, ur.rawHeaders);
        ur.pipe(res);
        return;
      }
      counters.httpBodiesReplaced++;
      ur.resume();
      ur.on('end', () => {
        const body = Buffer.from(newBody);
        const headers: string[] = [];
        for (let i = 0; i < ur.rawHeaders.length; i += 2) {
          const name = ur.rawHeaders[i] as string;
          if (/^(content-length|transfer-encoding|content-encoding|content-md5|etag)$/i.test(name)) continue;
          headers.push(name, ur.rawHeaders[i + 1] as string);
        }
        headers.push('Content-Length', String(body.length));
        res.writeHead(ur.statusCode ?? 502, ur.statusMessage, headers);
        res.end(body);
      });
    });
    // The destination failed mid-request: the target sees its connection fail, as it would.
    up.on('error', () => conn.relay.client.resetAndDestroy());
    req.pipe(up);
  }

  return {
    counters,
    layer: 'http',
    open(relay) {
      let decided = false;
      return {
        data(way, chunk) {
          if (decided) return relay.forward(way, chunk);
          decided = true;
          if (way === 'down' || !REQUEST_START.test(chunk.toString('latin1', 0, 16))) {
            counters.plainConnections++;
            return relay.forward(way, chunk);
          }
          relay.detach();
          const { client, upstream } = relay;
          // The destination closing an idle connection closes the target's, as it would.
          const onUpstreamClose = () => conn.inflight === 0 && client.end();
          const agent = new ConnAgent(upstream, () => relay.connect().once('close', onUpstreamClose));
          const conn: Conn = { relay, agent, inflight: 0 };
          conns.set(client, conn);
          upstream.once('close', onUpstreamClose);
          client.once('close', () => {
            agent.destroy();
            upstream.destroy();
          });
          client.pause();
          client.unshift(chunk);
          server.emit('connection', client);
          client.resume();
        },
      };
    },
    release() {
      if (released) return;
      released = true;
      for (const [t, passNow] of delayed) {
        clearTimeout(t);
        passNow();
      }
      delayed.clear();
    },
    close() {
      for (const t of delayed.keys()) clearTimeout(t);
      delayed.clear();
      server.close(); // also stops the headers check
      server.closeAllConnections();
    },
  };
}
