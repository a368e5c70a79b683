// A fixture app instrumented with prom-client, run in the test process on
// loopback: GET / calls its upstream (a container of ours) and counts the
// outcome in fixture_requests_total{outcome="ok"|"error"}; GET /metrics serves
// its registry, which the test's Prometheus scrapes.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Registry } from 'prom-client';

export interface MetricsApp {
  url: string;
  /** host:port for a Prometheus scrape config. */
  target: string;
  counts(): Promise<{ ok: number; error: number }>;
  stop(): Promise<void>;
}

export async function startMetricsApp(upstream: string, timeoutMs = 1000): Promise<MetricsApp> {
  const registry = new Registry();
  const requests = new Counter({
    name: 'fixture_requests_total',
    help: 'Requests served, by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });
  requests.inc({ outcome: 'ok' }, 0);
  requests.inc({ outcome: 'error' }, 0);
  const server = http.createServer(async (req, res) => {
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
      return;
    }
    try {
      const r = await fetch(upstream, { signal: AbortSignal.timeout(timeoutMs) });
      await r.text();
      if (!r.ok) throw new Error(`upstream ${r.status}`);
      requests.inc({ outcome: 'ok' });
      res.writeHead(200).end('ok');
    } catch (err) {
      requests.inc({ outcome: 'error' });
      res.writeHead(502).end((err as Error).message);
    }
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    target: `127.0.0.1:${port}`,
    async counts() {
      const m = await requests.get();
      const v = (o: string) => m.values.find((x) => x.labels.outcome === o)?.value ?? 0;
      return { ok: v('ok'), error: v('error') };
    },
    async stop() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
