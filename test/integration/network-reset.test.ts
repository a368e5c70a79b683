import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { ipOf, startClient, startHttpServer, stopAll } from '../helpers/containers.js';
import { curlOnce, curlRuns } from '../helpers/datapath.js';
import { faultContract } from '../helpers/fault-contract.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { cgroupDirOf } from '../helpers/target-info.js';

const BODY = 200_000;

async function hostGet(url: string): Promise<number> {
  const r = await fetch(url, { headers: { connection: 'close' }, signal: AbortSignal.timeout(5000) });
  return (await r.arrayBuffer()).byteLength;
}

describe('network-reset', () => {
  let server: StartedTestContainer;
  let big: string;
  beforeAll(async () => {
    server = await startHttpServer('reset-server');
    big = `http://${ipOf(server)}:8080/bytes?n=${BODY}`;
  });
  afterAll(() => stopAll(server));

  const env = faultContract({
    kind: 'network-reset',
    start: (name) => startClient(name),
    params: () => ({ afterBytes: 0, peer: server }),
    measure: async (c) => (await curlOnce(c, `http://${ipOf(server)}:8080/`)).exit,
    affected: (exit) => expect(exit).toBe(56), // recv failure: connection reset by peer
    normal: (exit) => expect(exit).toBe(0),
    counts: (s) => expect([s.connectionsReset, s.connectionsSpared]).toEqual([1, 0]),
    applied: async (c) => attachedPrograms(await cgroupDirOf(c)),
    host: () => hostGet(big),
    bad: [
      [
        'both afterBytes and afterMs',
        { afterBytes: 10, afterMs: 10 },
        /afterBytes is 10; expected exactly one of afterBytes .* and afterMs/,
      ],
      ['neither afterBytes nor afterMs', {}, /afterBytes is missing; expected exactly one of afterBytes/],
      ['negative afterBytes', { afterBytes: -1 }, /afterBytes is -1; expected an integer number of bytes from 0 to 2147483647/],
      ['afterMs too large', { afterMs: 1e9 }, /afterMs is 1000000000; expected a number of milliseconds from 0 to 600000/],
      ['percent 150', { afterBytes: 10, percent: 150 }, /percent is 150; expected a number from 0 to 100/],
      ['an unknown field', { afterBytes: 10, resetAfter: 3 }, /resetAfter is 3; expected no such field/],
    ],
    sigkill: 'reaped by the next run', // the packet path's iptables chains are journaled
  });

  it('resets the target connections after afterBytes bytes, not one byte later', async () => {
    const fault = await chaos.inject({ kind: 'network-reset', target: env.target, afterBytes: 20_000, peer: server });
    const during = await curlOnce(env.target, big);
    const stats = fault.stats();
    await fault.revert();

    expect(during.exit).toBe(56); // recv failure: connection reset by peer
    // Every byte up to the limit, both ways, went through; not one more.
    const carried = during.sentBytes + during.headerBytes + during.bodyBytes;
    expect(carried).toBeLessThanOrEqual(20_000);
    expect(carried).toBeGreaterThan(20_000 - 2_000);
    expect(stats.connectionsReset).toBe(1);
    expect(stats.bytesUp! + stats.bytesDown!).toBe(20_000);
  });

  it('resets afterMs after the connection opened', async () => {
    const slow = `http://${ipOf(server)}:8080/delay?ms=3000`;
    const fault = await chaos.inject({ kind: 'network-reset', target: env.target, afterMs: 300, port: 8080 });
    const during = await curlOnce(env.target, slow);
    await fault.revert();
    const after = await curlOnce(env.target, `http://${ipOf(server)}:8080/delay?ms=500`);
    expect(during.exit).toBe(56);
    expect(during.status).toBe(0);
    expect(during.ms).toBeGreaterThanOrEqual(290);
    expect(during.ms).toBeLessThan(1500);
    expect([after.exit, after.status]).toEqual([0, 200]);
    expect(after.ms).toBeGreaterThanOrEqual(490);
  });

  it('resets percent of the connections, the same ones for the same seed', async () => {
    const url = `http://${ipOf(server)}:8080/`;
    const runOnce = async () => {
      const fault = await chaos.inject({ kind: 'network-reset', target: env.target, afterBytes: 0, percent: 40, seed: 7 });
      const runs = await curlRuns(env.target, url, 40);
      const stats = fault.stats();
      await fault.revert();
      return { outcomes: runs.map((r) => r.exit), stats };
    };
    const a = await runOnce();
    const b = await runOnce();
    const resets = a.outcomes.filter((e) => e !== 0).length;
    // Binomial(40, 0.4): 16 +/- 3.1; the bounds are 4.4 sigma.
    expect(resets).toBeGreaterThanOrEqual(3);
    expect(resets).toBeLessThanOrEqual(29);
    expect(a.outcomes.every((e) => e === 0 || e === 56)).toBe(true);
    expect(a.stats.connectionsReset).toBe(resets);
    expect(a.stats.connectionsSpared).toBe(40 - resets);
    expect(b.outcomes).toEqual(a.outcomes);
  });
});
