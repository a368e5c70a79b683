// Workers -> main process: each worker writes its chaos events as JSON lines to
// a unix socket (mode 0600 in a 0700 directory) that the plugin listens on; the
// main process aggregates them and serves GET /metrics on 127.0.0.1.
// Why a socket and not Vitest's task meta: meta reaches the main process only
// when a test ends, so chaos_active_faults could never show a fault in force.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ChaosMetrics, type ChaosEvent } from './chaos-metrics.js';

export interface MetricsServer {
  metrics: ChaosMetrics;
  /** Where workers send their events. */
  socketPath: string;
  /** http://127.0.0.1:PORT/metrics */
  url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(options: { port: number; host?: string }, metrics = new ChaosMetrics()): Promise<MetricsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'vitest-chaos-metrics-'));
  chmodSync(dir, 0o700);
  const socketPath = join(dir, 'events.sock');
  const sockets = new Set<net.Socket>();
  const events = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          metrics.record(JSON.parse(line) as ChaosEvent);
        } catch {
          // a malformed line is dropped; the socket is ours alone (0600)
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => events.once('error', reject).listen(socketPath, resolve));
  chmodSync(socketPath, 0o600);

  const web = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('GET /metrics\n');
      return;
    }
    metrics.text().then(
      (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  const host = options.host ?? '127.0.0.1';
  try {
    await new Promise<void>((resolve, reject) => web.once('error', reject).listen(options.port, host, resolve));
  } catch (err) {
    events.close();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`vitest-chaos plugin: metrics.port ${options.port} on ${host}: ${(err as Error).message}; expected a free port`);
  }
  const port = (web.address() as AddressInfo).port;
  return {
    metrics,
    socketPath,
    url: `http://${host}:${port}/metrics`,
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise((r) => web.close(r)), new Promise((r) => events.close(r))]);
      web.closeAllConnections();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let connection: { path: string; socket: net.Socket } | undefined;

/** Sends one event to the main process; resolves once written. Never throws: metrics must not fail a test. */
export function sendChaosEvent(socketPath: string | undefined, event: ChaosEvent): Promise<void> {
  if (!socketPath) return Promise.resolve();
  if (!connection || connection.path !== socketPath || connection.socket.destroyed) {
    const socket = net.createConnection(socketPath);
    socket.on('error', () => undefined);
    socket.unref();
    connection = { path: socketPath, socket };
  }
  const { socket } = connection;
  return new Promise((resolve) => {
    socket.write(`${JSON.stringify(event)}\n`, () => resolve());
  });
}
