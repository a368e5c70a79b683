// Two data-path faults on the same peer are both in force (issue 7a): the
// connect program used to redirect to the first matching slot's proxy only,
// so network-latency and http on one peer left the second silently idle.
import { GenericContainer, Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { IMAGES, stopAll, testLabels } from '../helpers/containers.js';
import { curlRuns } from '../helpers/datapath.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { median } from '../helpers/stats.js';
import { cgroupDirOf } from '../helpers/target-info.js';

const B = 'http://backend:8080';
const LATENCY_MS = 200;
const ROUNDS = 4;
/**
 * Each curl opens a new connection: the target's SYN is held LATENCY_MS, then
 * its request (the packet path holds what the target sends, as netem on its
 * egress would), so a fresh request is held twice.
 */
const FRESH = 2 * LATENCY_MS;

describe('network-latency and http on the same peer', () => {
  let network: StartedNetwork;
  let server: StartedTestContainer;
  let target: StartedTestContainer;
  let control: StartedTestContainer;

  beforeAll(async () => {
    network = await new Network().start();
    const client = (name: string) => new GenericContainer(IMAGES.client).withNetwork(network).withLabels(testLabels(name)).start();
    [server, target, control] = await Promise.all([
      new GenericContainer(IMAGES.httpServer)
        .withNetwork(network)
        .withNetworkAliases('backend')
        .withLabels(testLabels('stacked-server'))
        .withWaitStrategy(Wait.forLogMessage(/listening http=/))
        .start(),
      client('stacked-target'),
      client('stacked-control'),
    ]);
  });
  afterAll(async () => {
    await stopAll(server, target, control);
    await network?.stop();
  });

  const latency = () => chaos.inject({ kind: 'network-latency', target, latencyMs: LATENCY_MS, peer: server });
  const abort = () => chaos.inject({ kind: 'http', target, peer: server, path: '/delay', abort: { status: 503, body: 'injected' } });

  for (const order of ['latency first', 'http first'] as const) {
    it(`applies both, whichever is injected first (${order}); nothing after revert`, async () => {
      const base = median((await curlRuns(target, `${B}/status/200`, ROUNDS)).map((r) => r.ms));
      const [lat, http] =
        order === 'latency first'
          ? [await latency(), await abort()]
          : await (async () => {
              const h = await abort();
              return [await latency(), h];
            })();
      const passed = await curlRuns(target, `${B}/status/200`, ROUNDS);
      const aborted = await curlRuns(target, `${B}/delay?ms=1`, ROUNDS);
      const controlDuring = await curlRuns(control, `${B}/delay?ms=1`, ROUNDS);
      const latStats = lat.stats();
      const httpStats = http.stats();
      await http.revert();
      // With http gone, latency alone is still in force.
      const latencyOnly = await curlRuns(target, `${B}/delay?ms=1`, ROUNDS);
      await lat.revert();
      const after = await curlRuns(target, `${B}/delay?ms=1`, ROUNDS);

      const ms = (rs: { ms: number }[]) => median(rs.map((r) => r.ms));
      console.info(
        `${order}: base ${base.toFixed(1)} ms; passed ${ms(passed).toFixed(1)} ms ` +
          `[${passed.map((r) => r.status).join(',')}]; aborted ${ms(aborted).toFixed(1)} ms ` +
          `[${aborted.map((r) => r.status).join(',')}]; latency only ${ms(latencyOnly).toFixed(1)} ms ` +
          `[${latencyOnly.map((r) => r.status).join(',')}]; after ${ms(after).toFixed(1)} ms; control ` +
          `${ms(controlDuring).toFixed(1)} ms; latency stats ${JSON.stringify(latStats)}; http stats ${JSON.stringify(httpStats)}`,
      );
      // Latency on every request to the peer, aborted ones included (the network is
      // between the target and the peer's answer).
      // Each request is held FRESH at least (timers fire at most ~1 ms early).
      expect(passed.map((r) => r.status)).toEqual(Array(ROUNDS).fill(200));
      expect(Math.min(...passed.map((r) => r.ms))).toBeGreaterThanOrEqual(FRESH - 2);
      expect(ms(passed)).toBeLessThan(base + FRESH + 100);
      expect(aborted.map((r) => [r.status, r.body])).toEqual(Array(ROUNDS).fill([503, 'injected']));
      expect(Math.min(...aborted.map((r) => r.ms))).toBeGreaterThanOrEqual(FRESH - 2);
      expect(ms(aborted)).toBeLessThan(base + FRESH + 100);
      // Each fault counted what it did.
      expect(latStats.connectionsMatched).toBeGreaterThanOrEqual(2 * ROUNDS);
      expect(latStats.packetsDelayed).toBeGreaterThanOrEqual(2 * ROUNDS);
      // http's proxy for what the target opens, and its inbound listener when the target listens.
      expect(latStats.proxiesFollowed).toBe(httpStats.inboundPorts > 0 ? 2 : 1);
      expect(httpStats.connectsRedirected).toBe(2 * ROUNDS);
      expect(httpStats.httpRequests).toBe(2 * ROUNDS);
      expect(httpStats.httpRequestsAborted).toBe(ROUNDS);
      // Control untouched; after reverting http, latency alone; after both, nothing.
      expect(controlDuring.map((r) => r.status)).toEqual(Array(ROUNDS).fill(200));
      expect(ms(controlDuring)).toBeLessThan(base + 50);
      expect(latencyOnly.map((r) => r.status)).toEqual(Array(ROUNDS).fill(200));
      expect(Math.min(...latencyOnly.map((r) => r.ms))).toBeGreaterThanOrEqual(FRESH - 2);
      expect(after.map((r) => r.status)).toEqual(Array(ROUNDS).fill(200));
      expect(ms(after)).toBeLessThan(base + 50);
      expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
    });
  }

  it('adds an http delay to the network latency', async () => {
    const base = median((await curlRuns(target, `${B}/delay?ms=1`, ROUNDS)).map((r) => r.ms));
    const lat = await latency();
    const hold = await chaos.inject({ kind: 'http', target, peer: server, path: '/delay', delayMs: 300 });
    const both = await curlRuns(target, `${B}/delay?ms=1`, ROUNDS);
    const holdStats = hold.stats();
    await hold.revert();
    await lat.revert();
    const m = median(both.map((r) => r.ms));
    console.info(`latency ${LATENCY_MS} ms + http delay 300 ms: ${base.toFixed(1)} -> ${m.toFixed(1)} ms`);
    expect(both.map((r) => r.status)).toEqual(Array(ROUNDS).fill(200));
    expect(Math.min(...both.map((r) => r.ms))).toBeGreaterThanOrEqual(FRESH + 300 - 2);
    expect(m).toBeLessThan(base + FRESH + 300 + 150);
    expect(holdStats.httpRequestsDelayed).toBe(ROUNDS);
  });
});
