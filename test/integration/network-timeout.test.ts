import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, ChaosSpecError } from 'vitest-chaos';
import { ipOf, startClient, startHttpServer, stopAll } from '../helpers/containers.js';
import { curlOnce, sigkill, startInjector } from '../helpers/datapath.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { cgroupDirOf } from '../helpers/target-info.js';

const BODY = 200_000;

async function serverRequests(server: StartedTestContainer): Promise<number> {
  const r = await fetch(`http://${ipOf(server)}:8080/stats`, { signal: AbortSignal.timeout(5000) });
  return ((await r.json()) as { httpRequests: number }).httpRequests;
}

describe('network-timeout', () => {
  let server: StartedTestContainer;
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  let root: string;
  let big: string;

  beforeAll(async () => {
    [server, target, control] = await Promise.all([
      startHttpServer('timeout-server'),
      startClient('timeout-target'),
      startClient('timeout-control'),
    ]);
    root = `http://${ipOf(server)}:8080/`;
    big = `http://${ipOf(server)}:8080/bytes?n=${BODY}`;
  });
  afterAll(() => stopAll(server, target, control));

  it('stalls the target connections: the request is swallowed, nothing comes back; normal after revert', async () => {
    const before = await curlOnce(target, root, '--max-time 2');
    const fault = await chaos.inject({ kind: 'network-timeout', target, peer: server });
    const seenBefore = await serverRequests(server); // from the host: not stalled
    const during = await curlOnce(target, root, '--max-time 2');
    const seenAfter = await serverRequests(server);
    const controlDuring = await curlOnce(control, root, '--max-time 2');
    const stats = fault.stats();
    await fault.revert();
    const after = await curlOnce(target, root, '--max-time 2');

    expect([before.exit, before.status]).toEqual([0, 200]);
    expect(during.exit).toBe(28); // operation timed out
    expect(during.status).toBe(0);
    expect(during.ms).toBeGreaterThanOrEqual(1990);
    expect(during.headerBytes + during.bodyBytes).toBe(0);
    // The request was accepted (curl sent it all) and never reached the server.
    expect(stats.bytesSwallowed).toBe(during.sentBytes);
    expect(stats.bytesUp).toBe(0);
    expect(stats.connectionsStalled).toBe(1);
    expect(seenAfter - seenBefore).toBe(1); // only the /stats call itself
    expect([controlDuring.exit, controlDuring.status]).toEqual([0, 200]);
    expect([after.exit, after.status]).toEqual([0, 200]);
    expect(after.ms).toBeLessThan(1000);
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
  });

  it('stalls after afterBytes bytes', async () => {
    const fault = await chaos.inject({ kind: 'network-timeout', target, afterBytes: 5000, port: 8080 });
    const during = await curlOnce(target, big, '--max-time 2');
    const stats = fault.stats();
    await fault.revert();
    const after = await curlOnce(target, big, '--max-time 2');
    expect(during.exit).toBe(28);
    expect(during.status).toBe(200); // the head got through, the body stopped
    expect(during.sentBytes + during.headerBytes + during.bodyBytes).toBe(5000);
    expect(stats.bytesUp! + stats.bytesDown!).toBe(5000);
    expect(stats.bytesSwallowed).toBeGreaterThan(0);
    expect([after.exit, after.bodyBytes]).toEqual([0, BODY]);
  });

  it('closes stalled connections closeAfterMs later', async () => {
    const fault = await chaos.inject({ kind: 'network-timeout', target, closeAfterMs: 500 });
    const during = await curlOnce(target, root, '--max-time 5');
    const stats = fault.stats();
    await fault.revert();
    expect(during.exit).toBe(52); // empty reply from server: a FIN, no answer
    expect(during.ms).toBeGreaterThanOrEqual(490);
    expect(during.ms).toBeLessThan(1500);
    expect(stats.stalledConnectionsClosed).toBe(1);
  });

  it('refuses bad parameters and applies nothing', async () => {
    const bad = [{ afterBytes: -5 }, { afterBytes: 1.5 }, { closeAfterMs: 'soon' }, { closeAfterMs: -1 }, { timeoutMs: 100 }];
    for (const params of bad) {
      await expect(chaos.inject({ kind: 'network-timeout', target, ...params } as never)).rejects.toThrow(ChaosSpecError);
    }
    await expect(chaos.inject({ kind: 'network-timeout', target, closeAfterMs: -1 })).rejects.toThrow(
      /closeAfterMs is -1; expected a number of milliseconds from 0 to 600000/,
    );
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
  });

  it('stacks, reverts twice, and reverts quietly after the target is gone', async () => {
    const f1 = await chaos.inject({ kind: 'network-timeout', target });
    const f2 = await chaos.inject({ kind: 'network-timeout', target, afterBytes: 10 });
    const during = await curlOnce(target, root, '--max-time 1');
    await f1.revert();
    await f1.revert();
    await f2.revert();
    await f2.revert();
    expect(during.exit).toBe(28);
    expect((await curlOnce(target, root, '--max-time 2')).exit).toBe(0);

    const doomed = await startClient('timeout-doomed');
    const f3 = await chaos.inject({ kind: 'network-timeout', target: doomed });
    await doomed.stop({ timeout: 0 });
    await expect(f3.revert()).resolves.toBeUndefined();
  });

  it('leaves nothing behind when the process holding it is SIGKILLed', async () => {
    const child = await startInjector('network-timeout', target, {});
    const during = await curlOnce(target, root, '--max-time 1');
    await sigkill(child);
    const after = await curlOnce(target, root, '--max-time 2');
    expect(during.exit).toBe(28);
    expect([after.exit, after.status]).toEqual([0, 200]);
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
  });
});
