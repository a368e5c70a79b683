// Throughput as a receiver sees it, bounded in bytes and time: what the host
// downloads from a container (the container's egress), and what a container
// downloads from another one through its /proxy route (its ingress: the proxy
// reports the fetch time alone).
import http from 'node:http';

function get(url: string, timeoutMs: number): Promise<{ status: number; body: Buffer; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * Bytes per second of GET /bytes?n=N from the container at ip (its egress), in
 * steady state: from the moment a tenth of the body has arrived to the end, so
 * connection set-up and TCP's slow start do not count.
 */
export async function downloadRate(ip: string, n: number, timeoutMs = 30_000): Promise<number> {
  const url = `http://${ip}:8080/bytes?n=${n}`;
  const r = await new Promise<{ status: number; got: number; from: number; fromBytes: number; end: number }>((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let got = 0;
      let from = 0;
      let fromBytes = 0;
      res.on('data', (c: Buffer) => {
        got += c.length;
        if (!from && got >= n / 10) [from, fromBytes] = [performance.now(), got];
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, got, from, fromBytes, end: performance.now() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
  if (r.status !== 200 || r.got !== n) throw new Error(`GET /bytes?n=${n}: ${r.status}, ${r.got} bytes`);
  return (n - r.fromBytes) / ((r.end - r.from) / 1000);
}

/** Bytes per second at which the container at ip downloads N bytes from the one at sourceIp (its ingress). */
export async function ingressRate(ip: string, sourceIp: string, n: number, timeoutMs = 30_000): Promise<number> {
  const inner = encodeURIComponent(`http://${sourceIp}:8080/bytes?n=${n}`);
  const r = await get(`http://${ip}:8080/proxy?url=${inner}&timeoutMs=${timeoutMs}`, timeoutMs + 5000);
  const j = JSON.parse(r.body.toString('utf8')) as { status?: number; bytes?: number; elapsedMs?: number; error?: string };
  if (r.status !== 200 || j.status !== 200 || j.bytes !== n || !j.elapsedMs)
    throw new Error(`proxy fetch of ${n} bytes: ${r.body.toString('utf8').slice(0, 200)}`);
  return n / (j.elapsedMs / 1000);
}

/**
 * The higher of two readings. A stall of the receiving process (a GC pause, a
 * busy event loop: once in a CI run, 0.83 of a 1 MB/s cap) only lowers a
 * reading, while the shaper bounds both from above; so the upper bound is
 * checked on every reading (the `each` callback) and the lower one on the best.
 */
export async function bestOf2(measure: () => Promise<number>, each: (rate: number) => void): Promise<number> {
  const a = await measure();
  each(a);
  const b = await measure();
  each(b);
  return Math.max(a, b);
}
