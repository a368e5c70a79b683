import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, ChaosSpecError } from 'vitest-chaos';
import { ipOf, startClient, startHttpServer, stopAll } from '../helpers/containers.js';
import { curlOnce, curlRuns, sigkill, startInjector } from '../helpers/datapath.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { cgroupDirOf } from '../helpers/target-info.js';

const BODY = 200_000;

async function hostGet(url: string): Promise<number> {
  const r = await fetch(url, { headers: { connection: 'close' }, signal: AbortSignal.timeout(5000) });
  return (await r.arrayBuffer()).byteLength;
}

describe('network-reset', () => {
  let server: StartedTestContainer;
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  let big: string;

  beforeAll(async () => {
    [server, target, control] = await Promise.all([
      startHttpServer('reset-server'),
      startClient('reset-target'),
      startClient('reset-control'),
    ]);
    big = `http://${ipOf(server)}:8080/bytes?n=${BODY}`;
  });
  afterAll(() => stopAll(server, target, control));

  it('resets the target connections after afterBytes bytes, and nothing after revert', async () => {
    const before = await curlOnce(target, big);
    const fault = await chaos.inject({ kind: 'network-reset', target, afterBytes: 20_000, peer: server });
    const during = await curlOnce(target, big);
    const controlDuring = await curlOnce(control, big);
    const hostDuring = await hostGet(big);
    const stats = fault.stats();
    await fault.revert();
    const after = await curlOnce(target, big);

    expect([before.exit, before.bodyBytes]).toEqual([0, BODY]);
    expect(during.exit).toBe(56); // recv failure: connection reset by peer
    // Every byte up to the limit, both ways, went through; not one more.
    const carried = during.sentBytes + during.headerBytes + during.bodyBytes;
    expect(carried).toBeLessThanOrEqual(20_000);
    expect(carried).toBeGreaterThan(20_000 - 2_000);
    expect(stats.connectionsReset).toBe(1);
    expect(stats.bytesUp! + stats.bytesDown!).toBe(20_000);
    expect([controlDuring.exit, controlDuring.bodyBytes]).toEqual([0, BODY]);
    expect(hostDuring).toBe(BODY);
    expect([after.exit, after.bodyBytes]).toEqual([0, BODY]);
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
  });

  it('resets afterMs after the connection opened', async () => {
    const slow = `http://${ipOf(server)}:8080/delay?ms=3000`;
    const fault = await chaos.inject({ kind: 'network-reset', target, afterMs: 300, port: 8080 });
    const during = await curlOnce(target, slow);
    await fault.revert();
    const after = await curlOnce(target, `http://${ipOf(server)}:8080/delay?ms=500`);
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
      const fault = await chaos.inject({ kind: 'network-reset', target, afterBytes: 0, percent: 40, seed: 7 });
      const runs = await curlRuns(target, url, 40);
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

  it('refuses bad parameters and applies nothing', async () => {
    const bad = [
      { afterBytes: 10, afterMs: 10 },
      {},
      { afterBytes: -1 },
      { afterMs: 1e9 },
      { afterBytes: 10, percent: 150 },
      { afterBytes: 10, resetAfter: 3 },
    ];
    for (const params of bad) {
      await expect(chaos.inject({ kind: 'network-reset', target, ...params } as never)).rejects.toThrow(ChaosSpecError);
    }
    await expect(chaos.inject({ kind: 'network-reset', target, afterBytes: 10, afterMs: 10 })).rejects.toThrow(
      /afterBytes is 10; expected exactly one of afterBytes .* and afterMs/,
    );
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
  });

  it('stacks, reverts twice, and reverts quietly after the target is gone', async () => {
    const url = `http://${ipOf(server)}:8080/`;
    const f1 = await chaos.inject({ kind: 'network-reset', target, afterBytes: 0 });
    const f2 = await chaos.inject({ kind: 'network-reset', target, afterBytes: 0 });
    const during = await curlOnce(target, url);
    await f1.revert();
    await f1.revert();
    await f2.revert();
    await f2.revert();
    expect(during.exit).toBe(56);
    expect((await curlOnce(target, url)).exit).toBe(0);

    const doomed = await startClient('reset-doomed');
    const f3 = await chaos.inject({ kind: 'network-reset', target: doomed, afterMs: 10 });
    await doomed.stop({ timeout: 0 });
    await expect(f3.revert()).resolves.toBeUndefined();
  });

  it('leaves nothing behind when the process holding it is SIGKILLed', async () => {
    const child = await startInjector('network-reset', target, { afterBytes: 1000 });
    const during = await curlOnce(target, big);
    await sigkill(child);
    const after = await curlOnce(target, big);
    expect(during.exit).toBe(56);
    expect([after.exit, after.bodyBytes]).toEqual([0, BODY]);
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
  });
});
