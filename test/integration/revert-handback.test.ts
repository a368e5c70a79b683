// Revert hands connections back unbroken (issue 8, requirement 3): a proxied
// fault's revert stops redirecting new connections and releases those its proxy
// carries, which go on (unfaulted) until either side closes them. A stream of
// keep-alive requests from inside a real container (outbound: the connect4 proxy)
// and from the test process (inbound http: the listener in the target's netns)
// runs across the revert: no request fails, the one in flight completes, the
// same connections carry the requests after it, the control stream is
// untouched; and nothing is left once the streams ended.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { releasedProxyCount } from '../../src/datapath/tcp-proxy.js';
import { ipOf, startHttpServer, stopAll } from '../helpers/containers.js';
import { fdCount, leftovers } from '../helpers/leftovers.js';
import { releaseIdle } from '../../src/targets/release-idle.js';
import { around, errorsOf, median, streamHere, streamIn, type StreamRequest, type StreamSpec } from '../helpers/request-stream.js';

// A journal of our own: the leftovers check reads it whole.
const JOURNAL = mkdtempSync(join(tmpdir(), 'vc-handback-'));
process.env.VITEST_CHAOS_JOURNAL_DIR = JOURNAL;

const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
const ports = (rs: StreamRequest[]) => new Set(rs.map((r) => r.port));

async function waitFor(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

describe('revert hands the connections of a proxied fault back unbroken', () => {
  let server: StartedTestContainer;
  let app: StartedTestContainer; // the target: its requests to the server go through the proxy
  let control: StartedTestContainer; // the same stream, no fault
  let base: string;
  let fdsBefore: number;
  let before: Awaited<ReturnType<typeof leftovers>>;

  beforeAll(async () => {
    [server, app, control] = await Promise.all([
      startHttpServer('handback-server'),
      startHttpServer('handback-app'),
      startHttpServer('handback-control'),
    ]);
    base = `http://${ipOf(server)}:8080`;
    before = await leftovers(JOURNAL, server, app);
    fdsBefore = fdCount(true);
  });
  afterAll(async () => {
    await stopAll(server, app, control);
    rmSync(JOURNAL, { recursive: true, force: true });
  });

  /** The fault is injected, the streams start at +300 ms, the fault is reverted at +revertAfter, the streams stop at +endAfter. */
  async function across(
    fault: () => Promise<{ revert(): Promise<void>; stats(): Record<string, number | undefined> }>,
    spec: Omit<StreamSpec, 'base' | 'startAt' | 'endAt'>,
    revertAfter: number,
    endAfter: number,
  ) {
    const f = await fault();
    let revertDone = 0;
    const t = Date.now();
    const full = { ...spec, base, startAt: t + 300, endAt: t + endAfter };
    const [target, ctl, revertAt] = await Promise.all([
      streamIn(app, full),
      streamIn(control, full),
      sleepUntil(t + revertAfter).then(async () => {
        const at = Date.now();
        await f.revert();
        revertDone = Date.now();
        return at;
      }),
    ]);
    return { target, ctl, revertAt, revertDone, stats: f.stats() };
  }

  it('network-timeout: the stalled requests complete at revert, on the same connections, and the stream flows on', async () => {
    // /bytes?n=2000 is about 2.2 kB a request: each connection stalls after 4-5 requests.
    const r = await across(
      () => chaos.inject({ kind: 'network-timeout', target: app, peer: server, afterBytes: 10_000 }),
      { paths: ['/bytes?n=2000'], workers: 2, paceMs: 20 },
      1300,
      2600,
    );
    const { before: pre, across: held, after } = around(r.target.requests, r.revertAt);
    console.info(
      `timeout across revert: ${r.target.requests.length} requests (${pre.length} before, ${held.length} held across, ${after.length} after), ` +
        `held ones took ${held.map((q) => q.t1 - q.t0).join(', ')} ms, after median ${median(after.map((q) => q.t1 - q.t0))} ms; ` +
        `control ${r.ctl.requests.length}; stats ${JSON.stringify(r.stats)}`,
    );
    expect(errorsOf(r.target.requests)).toEqual([]);
    expect(errorsOf(r.ctl.requests)).toEqual([]);
    expect(r.target.requests.every((q) => q.status === 200 && q.bytes === 2000)).toBe(true);
    expect(r.stats.connectionsStalled).toBe(2);
    // Both connections were stalled at revert, and their requests completed right after it.
    expect(held).toHaveLength(2);
    for (const q of held) expect(q.t1 - r.revertAt).toBeLessThan(500);
    // The stream went on, on the connections the proxy carried.
    expect(after.length).toBeGreaterThan(10);
    expect([...ports(after)].every((p) => ports(pre).has(p))).toBe(true);
    expect(median(after.map((q) => q.t1 - q.t0))).toBeLessThan(100);
    expect(r.ctl.requests.length).toBeGreaterThan(after.length + pre.length);
  });

  it('network-reset: no reset after revert, though the handed-back connections carry far more than afterBytes', async () => {
    const LIMIT = 600_000;
    const r = await across(
      () => chaos.inject({ kind: 'network-reset', target: app, peer: server, afterBytes: LIMIT }),
      { paths: ['/bytes?n=20000'], workers: 2, paceMs: 40 },
      900,
      3200,
    );
    const perConnection = new Map<number | undefined, number>();
    for (const q of r.target.requests) perConnection.set(q.port, (perConnection.get(q.port) ?? 0) + (q.bytes ?? 0));
    const { before: pre, after } = around(r.target.requests, r.revertAt);
    console.info(
      `reset across revert: ${r.target.requests.length} requests (${pre.length} before, ${after.length} after), bytes per connection ` +
        `${[...perConnection.values()].join(', ')} (afterBytes ${LIMIT}); stats ${JSON.stringify(r.stats)}`,
    );
    expect(errorsOf(r.target.requests)).toEqual([]);
    expect(errorsOf(r.ctl.requests)).toEqual([]);
    expect(r.stats.connectionsReset).toBe(0);
    expect(r.stats.connections).toBe(2);
    expect(perConnection.size).toBe(2);
    // Each connection went past the limit after the revert, unreset.
    for (const bytes of perConnection.values()) expect(bytes).toBeGreaterThan(LIMIT);
    expect([...ports(after)].every((p) => ports(pre).has(p))).toBe(true);
  });

  it('network-slow-close: the close held at revert goes through at once; the stream is untouched', async () => {
    const r = await across(
      () => chaos.inject({ kind: 'network-slow-close', target: app, peer: server, delayMs: 20_000 }),
      { paths: ['/status/200'], workers: 2, paceMs: 10, echoClose: `${ipOf(server)}:9001` },
      1000,
      1600,
    );
    const echo = r.target.echo!;
    console.info(
      `slow-close across revert: echo closed after ${echo.t1 - echo.t0} ms (${echo.t1 - r.revertAt} ms after revert), data "${echo.data}"; ` +
        `control echo ${r.ctl.echo!.t1 - r.ctl.echo!.t0} ms; ${r.target.requests.length} requests; stats ${JSON.stringify(r.stats)}`,
    );
    expect(echo.err).toBeUndefined();
    expect(echo.data).toBe('hello');
    expect(r.stats.closesDelayed).toBeGreaterThanOrEqual(1);
    // Held until the revert (not 20 s), then both FINs went through.
    expect(echo.t1).toBeGreaterThanOrEqual(r.revertAt);
    expect(echo.t1 - r.revertAt).toBeLessThan(500);
    expect(r.ctl.echo!.t1 - r.ctl.echo!.t0).toBeLessThan(500);
    expect(errorsOf(r.target.requests)).toEqual([]);
    expect(errorsOf(r.ctl.requests)).toEqual([]);
  });

  it('http (outbound): aborts stop at revert, the keep-alive connections keep working', async () => {
    const r = await across(
      () => chaos.inject({ kind: 'http', target: app, peer: server, path: '/status/', abort: { status: 503, body: 'injected' } }),
      { paths: ['/status/200'], workers: 2, paceMs: 10 },
      1000,
      2000,
    );
    // Requests sent while revert() ran may still be aborted: the fault is over when it returns.
    const pre = around(r.target.requests, r.revertAt).before;
    const after = around(r.target.requests, r.revertDone).after;
    console.info(
      `http abort across revert (revert took ${r.revertDone - r.revertAt} ms): before revert ${pre.length} requests ` +
        `(${pre.filter((q) => q.status === 503).length} aborted), after ${after.length} (${after.filter((q) => q.status === 200).length} passed); ` +
        `stats ${JSON.stringify(r.stats)}`,
    );
    expect(errorsOf(r.target.requests)).toEqual([]);
    expect(errorsOf(r.ctl.requests)).toEqual([]);
    expect(pre.length).toBeGreaterThan(5);
    expect(pre.every((q) => q.status === 503)).toBe(true);
    expect(after.length).toBeGreaterThan(5);
    expect(after.every((q) => q.status === 200)).toBe(true);
    expect([...ports(after)].every((p) => ports(pre).has(p))).toBe(true);
    expect(r.ctl.requests.every((q) => q.status === 200)).toBe(true);
  });

  it('http (outbound): a request held at revert is passed on at once; the stream beside it is untouched', async () => {
    const t = Date.now();
    const f = await chaos.inject({ kind: 'http', target: app, peer: server, path: '/delay', delayMs: 20_000 });
    const spec: StreamSpec = {
      base,
      paths: ['/status/200'],
      workers: 1,
      paceMs: 10,
      startAt: t + 300,
      endAt: t + 1600,
      once: ['/delay?ms=0'],
    };
    const [res, revertAt] = await Promise.all([
      streamIn(app, spec),
      sleepUntil(t + 1000).then(async () => {
        const at = Date.now();
        await f.revert();
        return at;
      }),
    ]);
    const held = res.requests.find((q) => q.path === '/delay?ms=0')!;
    console.info(`http delay reverted while holding: held request ${held.status}, answered ${held.t1 - revertAt} ms after the revert`);
    expect(errorsOf(res.requests)).toEqual([]);
    expect(held.status).toBe(200);
    expect(held.t1).toBeGreaterThanOrEqual(revertAt);
    expect(held.t1 - revertAt).toBeLessThan(500);
    expect(f.stats().httpRequestsDelayed).toBe(1);
  });

  it('http (inbound): from the test process, the held request completes at revert and the keep-alive connections carry on', async () => {
    const serverBase = `http://${ipOf(server)}:8080`;
    const controlBase = `http://${ipOf(control)}:8080`;
    const f = await chaos.inject({ kind: 'http', target: server, connections: 'inbound', path: '/delay', delayMs: 20_000 });
    const t = Date.now();
    const spec = { paths: ['/status/200', '/delay?ms=1'], workers: 2, startAt: t + 200, endAt: t + 1800, paceMs: 10 };
    const ctlSpec = { ...spec, paths: ['/status/200'] };
    const [target, ctl, revertAt] = await Promise.all([
      streamHere({ ...spec, base: serverBase }),
      streamHere({ ...ctlSpec, base: controlBase }),
      sleepUntil(t + 900).then(async () => {
        const at = Date.now();
        await f.revert();
        return at;
      }),
    ]);
    const stats = f.stats();
    const { before: pre, across: held, after } = around(target.requests, revertAt);
    console.info(
      `inbound http across revert: ${target.requests.length} requests (${pre.length} before, ${held.length} across: ` +
        `${held.map((q) => `${q.path} ${q.t1 - revertAt} ms after revert`).join(', ')}; ${after.length} after, median ` +
        `${median(after.map((q) => q.t1 - q.t0))} ms); control ${ctl.requests.length}; stats ${JSON.stringify(stats)}`,
    );
    expect(errorsOf(target.requests)).toEqual([]);
    expect(errorsOf(ctl.requests)).toEqual([]);
    // Each worker was held on its /delay request at the revert; both went on at once.
    expect(held.filter((q) => q.path === '/delay?ms=1')).toHaveLength(2);
    for (const q of held) expect(q.t1 - revertAt).toBeLessThan(500);
    expect(after.length).toBeGreaterThan(10);
    expect(after.every((q) => q.status === 200)).toBe(true);
    expect(median(after.map((q) => q.t1 - q.t0))).toBeLessThan(100);
    expect([...ports(after)].every((p) => ports(held).has(p))).toBe(true);
    expect(stats.inboundConnections).toBe(2);
    expect(stats.httpRequestsDelayed).toBe(2);
  });

  it('a ramp of http delays 50 -> 100 -> 200 ms (serial steps, a new connection per request): each step in force, no error at the step changes', async () => {
    const steps = [50, 100, 200];
    let f = await chaos.inject({ kind: 'http', target: app, peer: server, path: '/delay', delayMs: steps[0] as number });
    const t = Date.now();
    const STEP = 900;
    const spec: StreamSpec = { base, paths: ['/delay?ms=0'], workers: 2, keepAlive: false, startAt: t + 200, endAt: t + 200 + STEP * 3 };
    const changes: number[] = [];
    const ramp = (async () => {
      for (const ms of steps.slice(1)) {
        await sleepUntil(t + 200 + STEP * (changes.length + 1));
        changes.push(Date.now());
        await f.revert();
        f = await chaos.inject({ kind: 'http', target: app, peer: server, path: '/delay', delayMs: ms });
      }
      await sleepUntil(spec.endAt + 300);
      await f.revert();
    })();
    const [res] = await Promise.all([streamIn(app, spec), ramp]);
    for (const q of res.requests.filter((x) => x.err)) console.info(`ramp error ${q.path} ${q.err} t0 ${q.t0 - t} t1 ${q.t1 - t}`);
    const byStep = steps.map((_, i) =>
      res.requests
        .filter((q) => q.t0 > (i === 0 ? t + 200 : (changes[i - 1] as number) + 100) && q.t1 < (changes[i] ?? spec.endAt + 300))
        .map((q) => q.t1 - q.t0),
    );
    console.info(
      `http delay ramp: medians ${byStep.map((x, i) => `${steps[i]} -> ${median(x)} ms (${x.length})`).join(', ')}; ${res.requests.length} requests, ` +
        `errors ${JSON.stringify(errorsOf(res.requests))} (step changes at ${changes.map((c) => c - t).join(', ')} ms)`,
    );
    expect(errorsOf(res.requests)).toEqual([]);
    byStep.forEach((x, i) => {
      expect(x.length).toBeGreaterThan(2);
      expect(median(x)).toBeGreaterThanOrEqual(steps[i] as number);
      expect(median(x)).toBeLessThan((steps[i] as number) + 80);
    });
  });

  it('a stream fault injected later reaches the connections a reverted one handed back (its proxy still carries them)', async () => {
    // The first fault only relays (it would reset after 1 GB): its proxy takes the stream's two connections.
    const first = await chaos.inject({ kind: 'network-reset', target: app, peer: server, afterBytes: 1_000_000_000 });
    const t = Date.now();
    const spec = { base, paths: ['/bytes?n=2000'], workers: 2, paceMs: 20, startAt: t + 300, endAt: t + 2400 };
    let [revertAt, injectAt] = [0, 0];
    let stats: Record<string, number | undefined> = {};
    const [target, ctl] = await Promise.all([
      streamIn(app, spec),
      streamIn(control, spec),
      (async () => {
        await sleepUntil(t + 800);
        revertAt = Date.now();
        await first.revert();
        await sleepUntil(t + 1400);
        injectAt = Date.now();
        const second = await chaos.inject({ kind: 'network-reset', target: app, peer: server, afterBytes: 0 });
        await sleepUntil(t + 1900);
        stats = second.stats() as Record<string, number | undefined>;
        await second.revert();
      })(),
    ]);
    const handedBack = target.requests.filter((q) => q.t0 > revertAt && q.t1 < injectAt);
    const hit = target.requests.filter((q) => q.t0 >= injectAt - 50 && q.err !== undefined);
    console.info(
      `handed back: ${handedBack.length} requests on ports ${[...ports(handedBack)]} between the revert and the next inject; ` +
        `after it ${hit.length} failed (${[...new Set(hit.map((q) => q.err))].join(', ')}); stats ${JSON.stringify(stats)}`,
    );
    expect(errorsOf(target.requests.filter((q) => q.t1 < injectAt))).toEqual([]);
    expect(handedBack.length).toBeGreaterThan(5);
    // The second fault held the handed-back connections as open ones and reset them (on the packet path).
    expect(stats.connectionsOpenAtInject).toBeGreaterThanOrEqual(1);
    expect(stats.connectionsHit).toBeGreaterThanOrEqual(1);
    // The other end of each, the first fault's proxy (in this process), was closed with it: not left to the RST.
    expect(stats.peersClosed).toBe(stats.connectionsHit);
    expect(hit.length).toBeGreaterThan(0);
    expect(errorsOf(ctl.requests)).toEqual([]);
  });

  it('leaves nothing once the streams ended: every released proxy finished, no fd, no rule, no journal record', async () => {
    // The packet path's kept rules and readers of the netns, idle now, go as at the end of the file.
    await releaseIdle();
    const t0 = Date.now();
    expect(await waitFor(() => releasedProxyCount() === 0)).toBe(true);
    const t1 = Date.now();
    // The test's own keep-alive client sockets (fetch keeps an idle one 4 s) go too.
    expect(await waitFor(() => fdCount(true) <= fdsBefore, 10_000)).toBe(true);
    console.info(
      `released proxies all finished after ${t1 - t0} ms, fds (not counting BPF objects) back to ${fdCount(true)} (before: ${fdsBefore}) after ${Date.now() - t0} ms`,
    );
    expect(await leftovers(JOURNAL, server, app)).toEqual(before);
  });
});
