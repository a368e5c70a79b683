// A stream of HTTP requests on keep-alive connections, from inside a container
// (node of the http-server image, `docker exec`) or from the test process, timed
// on the wall clock the host and its containers share: a test reverts a fault at
// a known instant and sorts the requests into before, across and after it.
import http from 'node:http';
import type { StartedTestContainer } from 'testcontainers';

export interface StreamSpec {
  /** Base URL, e.g. http://172.17.0.3:8080 */
  base: string;
  /** Paths requested in turn by each worker. */
  paths: string[];
  /** Parallel workers (and keep-alive sockets). */
  workers: number;
  /** Wall-clock ms (Date.now()) when the workers start and stop starting requests. */
  startAt: number;
  endAt: number;
  /** Pause between one worker's requests, ms. */
  paceMs?: number;
  /** false: a new connection per request. Default true (keep-alive, `workers` sockets). */
  keepAlive?: boolean;
  /** Extra requests sent once at startAt (on their own connection), e.g. one a fault holds. */
  once?: string[];
  /** An echo server (host:port) closed first by us at startAt: ms until its FIN came back. */
  echoClose?: string;
}

export interface StreamRequest {
  path: string;
  t0: number;
  t1: number;
  status?: number;
  bytes?: number;
  /** The client's port: the connection it went on. */
  port?: number;
  err?: string;
}

export interface StreamResult {
  requests: StreamRequest[];
  echo?: { t0: number; t1: number; data: string; err?: string };
}

// One function, stringified into the container (node -e) and called in-process alike.
function runStream(spec: StreamSpec, httpMod: typeof http, netMod: typeof import('node:net')): Promise<StreamResult> {
  const agent = spec.keepAlive === false ? false : new httpMod.Agent({ keepAlive: true, maxSockets: spec.workers });
  const requests: StreamRequest[] = [];
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
  const get = (path: string, a: http.Agent | false): Promise<StreamRequest> =>
    new Promise((resolve) => {
      const t0 = Date.now();
      const req = httpMod.get(`${spec.base}${path}`, { agent: a, timeout: 15000 }, (res) => {
        let bytes = 0;
        const port = res.socket.localPort;
        res.on('data', (d: Buffer) => (bytes += d.length));
        res.on('end', () => resolve({ path, t0, t1: Date.now(), status: res.statusCode, bytes, port }));
        res.on('error', (e: NodeJS.ErrnoException) => resolve({ path, t0, t1: Date.now(), err: e.code ?? e.message }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e: NodeJS.ErrnoException) => resolve({ path, t0, t1: Date.now(), err: e.code ?? e.message }));
    });
  const worker = async (w: number) => {
    let i = w;
    while (Date.now() < spec.endAt) {
      requests.push(await get(spec.paths[i++ % spec.paths.length] as string, agent));
      if (spec.paceMs) await sleep(spec.paceMs);
    }
  };
  const echo = (): Promise<StreamResult['echo']> =>
    new Promise((resolve) => {
      const [host, port] = (spec.echoClose as string).split(':');
      const t0 = Date.now();
      let data = '';
      const s = netMod.connect(Number(port), host as string, () => s.end('hello'));
      s.setEncoding('utf8');
      s.on('data', (d: string) => (data += d));
      s.on('end', () => resolve({ t0, t1: Date.now(), data }));
      s.on('error', (e: NodeJS.ErrnoException) => resolve({ t0, t1: Date.now(), data, err: e.code ?? e.message }));
    });
  return sleep(spec.startAt - Date.now()).then(async () => {
    const [, once, echoed] = await Promise.all([
      Promise.all(Array.from({ length: spec.workers }, (_, w) => worker(w))),
      Promise.all((spec.once ?? []).map((p) => get(p, false))),
      spec.echoClose ? echo() : Promise.resolve(undefined),
    ]);
    if (agent) agent.destroy();
    return { requests: [...requests, ...once], ...(echoed ? { echo: echoed } : {}) };
  });
}

/** Runs the stream inside the container (its node: the http-server image). */
export async function streamIn(c: StartedTestContainer, spec: StreamSpec): Promise<StreamResult> {
  const script = `(${runStream.toString()})(${JSON.stringify(spec)}, require('http'), require('net')).then((r) => console.log(JSON.stringify(r)))`;
  const r = await c.exec(['node', '-e', script]);
  if (r.exitCode !== 0) throw new Error(`stream in ${c.getName()} failed (${r.exitCode}): ${r.output}`);
  return JSON.parse(r.output.trim().split('\n').pop() as string) as StreamResult;
}

/** The same stream from the test process. */
export async function streamHere(spec: StreamSpec): Promise<StreamResult> {
  return runStream(spec, http, await import('node:net'));
}

/** The requests in flight at `at` (started before, answered after), and those started after `at`. */
export function around(
  requests: StreamRequest[],
  at: number,
): { across: StreamRequest[]; after: StreamRequest[]; before: StreamRequest[] } {
  return {
    before: requests.filter((r) => r.t1 < at),
    across: requests.filter((r) => r.t0 <= at && r.t1 >= at),
    after: requests.filter((r) => r.t0 > at),
  };
}

export const errorsOf = (requests: StreamRequest[]): string[] =>
  requests.filter((r) => r.err !== undefined).map((r) => `${r.path}: ${r.err} after ${r.t1 - r.t0} ms`);

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)] as number) : Number.NaN;
};
