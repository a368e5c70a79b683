import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { ipOf, startClient, startHttpServer, stopAll } from '../helpers/containers.js';
import { curlOnce } from '../helpers/datapath.js';
import { faultContract } from '../helpers/fault-contract.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { cgroupDirOf } from '../helpers/target-info.js';

const BODY = 200_000;

async function serverRequests(server: StartedTestContainer): Promise<number> {
  const r = await fetch(`http://${ipOf(server)}:8080/stats`, { signal: AbortSignal.timeout(5000) });
  return ((await r.json()) as { httpRequests: number }).httpRequests;
}

describe('network-timeout', () => {
  let server: StartedTestContainer;
  let root: string;
  let big: string;
  beforeAll(async () => {
    server = await startHttpServer('timeout-server');
    root = `http://${ipOf(server)}:8080/`;
    big = `http://${ipOf(server)}:8080/bytes?n=${BODY}`;
  });
  afterAll(() => stopAll(server));

  const env = faultContract({
    kind: 'network-timeout',
    start: (name) => startClient(name),
    params: () => ({ peer: server }),
    measure: async (c) => {
      const r = await curlOnce(c, root, '--max-time 2');
      return { exit: r.exit, answered: r.headerBytes + r.bodyBytes > 0 };
    },
    affected: (m) => expect(m).toEqual({ exit: 28, answered: false }), // operation timed out, not one byte back
    normal: (m) => expect(m).toEqual({ exit: 0, answered: true }),
    counts: (s) => expect([s.connectionsStalled, s.bytesUp]).toEqual([1, 0]),
    applied: async (c) => attachedPrograms(await cgroupDirOf(c)),
    host: async () => (await fetch(root, { signal: AbortSignal.timeout(5000) })).status,
    bad: [
      ['negative afterBytes', { afterBytes: -5 }, /afterBytes is -5; expected an integer number of bytes from 0 to 2147483647/],
      ['fractional afterBytes', { afterBytes: 1.5 }, /afterBytes is 1.5; expected an integer number of bytes/],
      ['closeAfterMs as a word', { closeAfterMs: 'soon' }, /closeAfterMs is "soon"; expected a number of milliseconds from 0 to 600000/],
      ['negative closeAfterMs', { closeAfterMs: -1 }, /closeAfterMs is -1; expected a number of milliseconds from 0 to 600000/],
      ['an unknown field', { timeoutMs: 100 }, /timeoutMs is 100; expected no such field/],
    ],
    sigkill: 'reaped by the next run', // the packet path's iptables chains are journaled
  });

  it('swallows the request: it never reaches the server', async () => {
    const fault = await chaos.inject({ kind: 'network-timeout', target: env.target, peer: server });
    const seenBefore = await serverRequests(server); // from the host: not stalled
    const during = await curlOnce(env.target, root, '--max-time 2');
    const seenAfter = await serverRequests(server);
    const stats = fault.stats();
    await fault.revert();
    expect(during.exit).toBe(28);
    expect(during.ms).toBeGreaterThanOrEqual(1990);
    // The request was accepted (curl sent it all) and never reached the server.
    expect(stats.bytesSwallowed).toBe(during.sentBytes);
    expect(seenAfter - seenBefore).toBe(1); // only the /stats call itself
  });

  it('stalls after afterBytes bytes', async () => {
    const fault = await chaos.inject({ kind: 'network-timeout', target: env.target, afterBytes: 5000, port: 8080 });
    const during = await curlOnce(env.target, big, '--max-time 2');
    const stats = fault.stats();
    await fault.revert();
    const after = await curlOnce(env.target, big, '--max-time 2');
    expect(during.exit).toBe(28);
    expect(during.status).toBe(200); // the head got through, the body stopped
    expect(during.sentBytes + during.headerBytes + during.bodyBytes).toBe(5000);
    expect(stats.bytesUp! + stats.bytesDown!).toBe(5000);
    expect(stats.bytesSwallowed).toBeGreaterThan(0);
    expect([after.exit, after.bodyBytes]).toEqual([0, BODY]);
  });

  it('closes stalled connections closeAfterMs later', async () => {
    const fault = await chaos.inject({ kind: 'network-timeout', target: env.target, closeAfterMs: 500 });
    const during = await curlOnce(env.target, root, '--max-time 5');
    const stats = fault.stats();
    await fault.revert();
    expect(during.exit).toBe(52); // empty reply from server: a FIN, no answer
    expect(during.ms).toBeGreaterThanOrEqual(490);
    expect(during.ms).toBeLessThan(1500);
    expect(stats.stalledConnectionsClosed).toBe(1);
  });
});
