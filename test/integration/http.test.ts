import { GenericContainer, Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { faultContract } from '../helpers/fault-contract.js';
import { chaos } from 'vitest-chaos';
import { IMAGES, sh, stopAll, testLabels } from '../helpers/containers.js';
import { curlOnce, curlRuns } from '../helpers/datapath.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { cgroupDirOf } from '../helpers/target-info.js';

const B = 'http://backend:8080';

describe('http', () => {
  let network: StartedNetwork;
  let server: StartedTestContainer;
  let serverIp: string;

  const served = async () => {
    const r = await fetch(`http://${serverIp}:8080/stats`, { signal: AbortSignal.timeout(5000) });
    return ((await r.json()) as { httpRequests: number }).httpRequests;
  };

  beforeAll(async () => {
    network = await new Network().start();
    server = await new GenericContainer(IMAGES.httpServer)
      .withNetwork(network)
      .withNetworkAliases('backend')
      .withLabels(testLabels('http-server'))
      .withWaitStrategy(Wait.forLogMessage(/listening http=/))
      .start();
    serverIp = server.getIpAddress(network.getName());
  });
  afterAll(async () => {
    await stopAll(server);
    await network?.stop();
  });

  const env = faultContract({
    kind: 'http',
    start: (name) => new GenericContainer(IMAGES.client).withNetwork(network).withLabels(testLabels(name)).start(),
    params: () => ({ host: 'backend', path: '/delay', abort: { status: 503, body: 'injected' } }),
    measure: async (c) => {
      const r = await curlOnce(c, `${B}/delay?ms=1`);
      return [r.status, r.body];
    },
    affected: (m) => expect(m).toEqual([503, 'injected']),
    normal: (m) => expect(m).toEqual([200, '{"ok":true,"delayedMs":1}']),
    counts: (s) => expect([s.httpRequests, s.httpRequestsAborted]).toEqual([1, 1]),
    applied: async (c) => attachedPrograms(await cgroupDirOf(c)),
    host: async () => (await fetch(`http://${serverIp}:8080/delay?ms=1`, { signal: AbortSignal.timeout(5000) })).status,
    bad: [
      ['no action', { host: 'backend' }, /abort is missing; expected at least one of abort, delayMs, body/],
      ['status 99', { abort: { status: 99 } }, /abort.status is 99; expected an integer HTTP status from 200 to 599/],
      ['abort as a number', { abort: 503 }, /abort is 503; expected an object \{ status, body\? \}/],
      ['a relative path', { path: 'api', delayMs: 1 }, /path is "api"; expected a path prefix starting with "\/"/],
      ['a bad method', { method: 'GE T', delayMs: 1 }, /method is "GE T"; expected an HTTP method such as "GET" or "POST"/],
      ['percent 101', { percent: 101, delayMs: 1 }, /percent is 101; expected a number from 0 to 100/],
      ['an unknown field', { delayMs: 1, hostname: 'x' }, /hostname is "x"; expected no such field/],
    ],
    sigkill: 'reaped by the next run', // connections 'all': the inbound REDIRECT chain is journaled
  });
  let target: StartedTestContainer;
  beforeEach(() => {
    target = env.target;
  });

  it('aborts matching requests with the status, passes the others; nothing after revert', async () => {
    const before = await curlOnce(target, `${B}/delay?ms=1`);
    const fault = await chaos.inject({
      kind: 'http',
      target,
      host: 'backend',
      path: '/delay',
      abort: { status: 503, body: 'injected' },
    });
    const n0 = await served();
    const aborted = await curlOnce(target, `${B}/delay?ms=1`);
    const n1 = await served();
    const passed = await curlOnce(target, `${B}/status/201`);
    const byIp = await curlOnce(target, `http://${serverIp}:8080/delay?ms=1`); // Host is the IP: no match
    // Two requests on one kept-alive connection: the first aborted, the second passed.
    const both = await sh(target, `curl -s -w ' %{http_code} %{num_connects}\\n' ${B}/delay?ms=1 ${B}/`);
    const stats = fault.stats();
    await fault.revert();
    const after = await curlOnce(target, `${B}/delay?ms=1`);

    expect([before.status, before.body]).toEqual([200, '{"ok":true,"delayedMs":1}']);
    expect([aborted.exit, aborted.status, aborted.body]).toEqual([0, 503, 'injected']);
    expect(n1 - n0).toBe(1); // only our /stats call: the aborted request never reached the server
    expect([passed.status, passed.body]).toEqual([201, '{"status":201}']);
    expect(byIp.status).toBe(200);
    expect(both.output.trim().split('\n')).toEqual(['injected 503 1', 'ok 200 0']);
    expect(stats.httpRequestsAborted).toBe(2);
    expect(stats.httpRequests).toBe(5);
    expect([after.status, after.body]).toEqual([200, '{"ok":true,"delayedMs":1}']);
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
  });

  it('holds matching requests delayMs (path as a RegExp)', async () => {
    const fault = await chaos.inject({ kind: 'http', target, path: /^\/status\/2\d\d$/, delayMs: 300 });
    const slow = await curlRuns(target, `${B}/status/204`, 3);
    const fast = await curlRuns(target, `${B}/status/404`, 3);
    await fault.revert();
    const after = await curlRuns(target, `${B}/status/204`, 3);
    for (const r of slow) {
      expect(r.status).toBe(204);
      expect(r.ms).toBeGreaterThanOrEqual(295);
      expect(r.ms).toBeLessThan(800);
    }
    for (const r of [...fast, ...after]) expect(r.ms).toBeLessThan(150);
    expect(fast.map((r) => r.status)).toEqual([404, 404, 404]);
  });

  it('replaces the body of matching responses and fixes content-length', async () => {
    const fault = await chaos.inject({ kind: 'http', target, path: '/bytes', method: 'get', body: 'replaced' });
    const r = await curlOnce(target, `${B}/bytes?n=50000`);
    const head = await sh(target, `curl -s -D - -o /dev/null ${B}/bytes?n=50000 | tr -d '\\r' | grep -i content-length`);
    const post = await curlOnce(target, `${B}/bytes?n=50000`, '--max-time 5 -X POST');
    await fault.revert();
    const after = await curlOnce(target, `${B}/bytes?n=50000`);
    expect([r.exit, r.status, r.body, r.bodyBytes]).toEqual([0, 200, 'replaced', 8]);
    expect(head.output.trim().toLowerCase()).toBe('content-length: 8');
    expect(post.bodyBytes).toBe(50_000); // method POST does not match
    expect(after.bodyBytes).toBe(50_000);
  });

  it('hits percent of the matching requests, the same ones for the same seed', async () => {
    const runOnce = async () => {
      const fault = await chaos.inject({ kind: 'http', target, abort: { status: 500 }, percent: 30, seed: 11 });
      const runs = await curlRuns(target, `${B}/`, 40);
      const stats = fault.stats();
      await fault.revert();
      return { codes: runs.map((r) => r.status), stats };
    };
    const a = await runOnce();
    const b = await runOnce();
    const hit = a.codes.filter((c) => c === 500).length;
    // Binomial(40, 0.3): 12 +/- 2.9; the bounds are 4.4 sigma.
    expect(hit).toBeGreaterThanOrEqual(1);
    expect(hit).toBeLessThanOrEqual(24);
    expect(a.codes.every((c) => c === 200 || c === 500)).toBe(true);
    expect(a.stats.httpRequestsAborted).toBe(hit);
    expect(b.codes).toEqual(a.codes);
  });

  it('relays connections that are not HTTP untouched', async () => {
    const fault = await chaos.inject({ kind: 'http', target, abort: { status: 503 } });
    const echo = await sh(target, 'echo hello | timeout 5 nc -N backend 9001');
    const stats = fault.stats();
    await fault.revert();
    expect(echo.output.trim()).toBe('hello');
    expect(stats.plainConnections).toBe(1);
    expect(stats.connections).toBe(1);
  });
});
