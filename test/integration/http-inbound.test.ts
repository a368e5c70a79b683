// http on the requests a container SERVES: the test process fetches an HTTP
// server container through its mapped port (a new connection per request);
// a NAT REDIRECT in the container's netns sends them to our listener there,
// which applies the policy and relays to the server locally.
import http from 'node:http';
import Docker from 'dockerode';
import { ourChainsOf } from '../helpers/datapath.js';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { testLabels } from '../helpers/containers.js';
import { faultContract } from '../helpers/fault-contract.js';
import { tcpTableOf } from '../../src/targets/tcp-table.js';

interface Answer {
  status: number;
  body: string;
  ms: number;
}

function startServer(name: string): Promise<StartedTestContainer> {
  return new GenericContainer('vitest-chaos/http-server:latest')
    .withLabels(testLabels(name))
    .withExposedPorts(8080)
    .withWaitStrategy(Wait.forLogMessage(/listening http=/))
    .start();
}

/** One GET from the test process through the mapped port, on a connection of its own (or the agent's). */
function get(c: StartedTestContainer, path: string, agent: http.Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get({ host: c.getHost(), port: c.getMappedPort(8080), path, agent, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

const chainsOf = (c: StartedTestContainer) => ourChainsOf(c, 'queue+nat');

describe('http on inbound connections', () => {
  const env = faultContract({
    kind: 'http',
    start: startServer,
    params: () => ({ connections: 'inbound', path: '/status/', abort: { status: 503, body: 'injected' } }),
    measure: (c) => get(c, '/status/200'),
    affected: (m) => {
      expect([m.status, m.body]).toEqual([503, 'injected']);
    },
    normal: (m) => {
      expect(m.status).toBe(200);
    },
    counts: (s) => {
      expect(s.inboundConnections).toBe(1);
      expect(s.httpRequestsAborted).toBe(1);
      expect(s.inboundPorts).toBeGreaterThanOrEqual(1);
    },
    applied: chainsOf,
    bad: [
      [
        'connections as a word',
        { connections: 'both', abort: { status: 503 } },
        /connections is "both"; expected one of "inbound", "outbound", "all"/,
      ],
      ['no effect', { connections: 'inbound' }, /at least one of abort, delayMs, body/],
    ],
    sigkill: 'reaped by the next run', // the REDIRECT chain is journaled
  });

  it('holds matching requests delayMs, others untouched; keep-alive connections opened before are counted as unreached', async () => {
    const keep = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const warmed = await get(env.target, '/delay?ms=1', keep);
      const before = await get(env.target, '/delay?ms=1');
      // `before` had a connection of its own, closing now: only the kept-alive one is to be open at inject
      // (an inject can now be quicker than the server closing it).
      const pid = (await new Docker().getContainer(env.target.getId()).inspect()).State.Pid;
      for (let i = 0; i < 100 && (await tcpTableOf(pid)).connections.filter((c) => c.way === 'inbound').length > 1; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const fault = await chaos.inject({ kind: 'http', target: env.target, connections: 'inbound', path: '/delay', delayMs: 300 });
      const step = <T>(name: string, p: Promise<T>) => p.catch((e: Error) => Promise.reject(new Error(`${name}: ${e.message}`)));
      const during = await step('during', get(env.target, '/delay?ms=1'));
      const other = await step('other', get(env.target, '/status/204'));
      const onKept = await step('kept', get(env.target, '/delay?ms=1', keep));
      const control = await get(env.control, '/delay?ms=1');
      const stats = fault.stats();
      await fault.revert();
      const after = await get(env.target, '/delay?ms=1');
      console.info(
        `http inbound delay 300: before ${before.ms.toFixed(1)} ms, during ${during.ms.toFixed(1)} ms, other path ${other.ms.toFixed(1)} ms, ` +
          `kept-alive connection ${onKept.ms.toFixed(1)} ms, control ${control.ms.toFixed(1)} ms, after ${after.ms.toFixed(1)} ms; ${JSON.stringify(stats)}`,
      );
      expect([warmed.status, before.status, during.status, other.status, onKept.status, after.status]).toEqual([
        200, 200, 200, 204, 200, 200,
      ]);
      expect(during.ms).toBeGreaterThanOrEqual(298);
      expect(during.ms - before.ms).toBeLessThan(300 + 150);
      expect(other.ms).toBeLessThan(250);
      // The connection accepted before the inject is not redirected (NAT decides on the first packet): counted, not hidden.
      expect(onKept.ms).toBeLessThan(250);
      expect(stats.inboundConnectionsUnreached).toBe(1);
      expect(stats.inboundConnections).toBe(2);
      expect(stats.httpRequestsDelayed).toBe(1);
      expect(control.ms).toBeLessThan(250);
      expect(after.ms).toBeLessThan(250);
      expect(await chainsOf(env.target)).toEqual([]);
    } finally {
      keep.destroy();
    }
  });

  for (const order of ['latency first', 'http first'] as const) {
    it(`latency and http on the requests the container serves are both in force (${order}); nothing after revert`, async () => {
      const LAT = 150;
      const base = await get(env.target, '/delay?ms=1');
      const latency = () => chaos.inject({ kind: 'network-latency', target: env.target, latencyMs: LAT, connections: 'inbound' });
      const abort = () =>
        chaos.inject({
          kind: 'http',
          target: env.target,
          connections: 'inbound',
          path: '/status/',
          abort: { status: 503, body: 'injected' },
        });
      let lat: Awaited<ReturnType<typeof latency>>;
      let h: Awaited<ReturnType<typeof abort>>;
      if (order === 'latency first') {
        lat = await latency();
        h = await abort();
      } else {
        h = await abort();
        lat = await latency();
      }
      const aborted = await get(env.target, '/status/200');
      const passed = await get(env.target, '/delay?ms=1');
      const [latStats, hStats] = [lat.stats(), h.stats()];
      await h.revert();
      await lat.revert();
      const after = await get(env.target, '/status/200');
      console.info(
        `${order}: base ${base.ms.toFixed(1)} ms; aborted ${aborted.status} ${aborted.ms.toFixed(1)} ms; passed ${passed.status} ` +
          `${passed.ms.toFixed(1)} ms; after ${after.status} ${after.ms.toFixed(1)} ms; latency ${JSON.stringify(latStats)}; http ${JSON.stringify(hStats)}`,
      );
      // A fresh connection: the SYN-ACK and the answer are held (what the server side sends).
      expect([aborted.status, aborted.body]).toEqual([503, 'injected']);
      expect(aborted.ms).toBeGreaterThanOrEqual(2 * LAT - 2);
      expect(passed.status).toBe(200);
      expect(passed.ms).toBeGreaterThanOrEqual(2 * LAT - 2);
      expect(passed.ms - base.ms).toBeLessThan(2 * LAT + 150);
      expect(latStats.proxiesFollowed).toBe(1);
      expect(hStats.inboundConnections).toBe(2);
      expect(after.status).toBe(200);
      expect(after.ms).toBeLessThan(LAT);
      expect(await chainsOf(env.target)).toEqual([]);
    });
  }

  it('two inbound http faults on one target are both in force, the newest first; each revert leaves the other', async () => {
    const older = await chaos.inject({ kind: 'http', target: env.target, connections: 'inbound', path: '/delay', delayMs: 250 });
    const newer = await chaos.inject({
      kind: 'http',
      target: env.target,
      connections: 'inbound',
      path: '/status/',
      abort: { status: 503, body: 'newer' },
    });
    const both = { delay: await get(env.target, '/delay?ms=1'), status: await get(env.target, '/status/204') };
    const [oStats, nStats] = [older.stats(), newer.stats()];
    await newer.revert();
    const olderOnly = { delay: await get(env.target, '/delay?ms=1'), status: await get(env.target, '/status/204') };
    // The other order of revert: the newer still in force when the older goes.
    const newer2 = await chaos.inject({
      kind: 'http',
      target: env.target,
      connections: 'inbound',
      path: '/status/',
      abort: { status: 502 },
    });
    await older.revert();
    const newerOnly = { delay: await get(env.target, '/delay?ms=1'), status: await get(env.target, '/status/204') };
    await newer2.revert();
    const none = { delay: await get(env.target, '/delay?ms=1'), status: await get(env.target, '/status/204') };
    const fmt = (x: { delay: Answer; status: Answer }) =>
      `/delay ${x.delay.status} in ${x.delay.ms.toFixed(0)} ms, /status/204 ${x.status.status}`;
    console.info(
      `stacked inbound http: both: ${fmt(both)}; older only: ${fmt(olderOnly)}; newer only: ${fmt(newerOnly)}; none: ${fmt(none)}; ` +
        `older ${JSON.stringify(oStats)}, newer ${JSON.stringify(nStats)}`,
    );
    expect([both.delay.status, both.status.status, both.status.body]).toEqual([200, 503, 'newer']);
    expect(both.delay.ms).toBeGreaterThanOrEqual(248);
    // The delayed request went through the newer proxy (its path did not match) on to the older.
    expect(nStats.inboundConnections).toBe(2);
    expect(oStats.httpRequestsDelayed).toBe(1);
    expect([olderOnly.delay.status, olderOnly.status.status]).toEqual([200, 204]);
    expect(olderOnly.delay.ms).toBeGreaterThanOrEqual(248);
    expect([newerOnly.delay.status, newerOnly.status.status]).toEqual([200, 502]);
    expect(newerOnly.delay.ms).toBeLessThan(200);
    expect([none.delay.status, none.status.status]).toEqual([200, 204]);
    expect(none.delay.ms).toBeLessThan(200);
    expect(await chainsOf(env.target)).toEqual([]);
  });
});
