import net from 'node:net';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, ChaosSpecError } from 'vitest-chaos';
import { ipOf, sh, startClient, startHttpServer, stopAll } from '../helpers/containers.js';
import { sigkill, startInjector } from '../helpers/datapath.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { cgroupDirOf } from '../helpers/target-info.js';

const DELAY = 400;

/**
 * From inside the container: the target closes first. nc sends a line to the
 * TCP echo server, half-closes (-N), and exits when the server's FIN arrives:
 * both FINs cross the proxy, so a slow close shows twice.
 */
async function echoClose(c: StartedTestContainer, ip: string): Promise<{ ms: number; output: string }> {
  const r = await sh(
    c,
    `s=$(date +%s%N); out=$(echo hello | timeout 5 nc -N ${ip} 9001); e=$(date +%s%N); echo "$(( (e - s) / 1000000 )) $out"`,
  );
  const [ms, output] = r.output.trim().split(' ');
  return { ms: Number(ms), output: output ?? '' };
}

/** The server closes first: an HTTP request with Connection: close; nc exits on the server's FIN. */
async function serverClose(c: StartedTestContainer, ip: string): Promise<{ ms: number; output: string }> {
  const req = 'GET / HTTP/1.1\\r\\nHost: s\\r\\nConnection: close\\r\\n\\r\\n';
  const r = await sh(
    c,
    `s=$(date +%s%N); out=$(printf '${req}' | timeout 5 nc ${ip} 8080 | tail -n1); e=$(date +%s%N); echo "$(( (e - s) / 1000000 )) $out"`,
  );
  const [ms, output] = r.output.trim().split(' ');
  return { ms: Number(ms), output: output ?? '' };
}

/** The same from the host: write, half-close, wait for the echo server's FIN. */
function hostEchoClose(ip: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect(9001, ip, () => s.end('hello\n'));
    s.setTimeout(5000, () => s.destroy(new Error('host echo timed out')));
    s.on('error', reject);
    s.resume();
    s.on('end', () => resolve(performance.now() - t0));
  });
}

describe('network-slow-close', () => {
  let server: StartedTestContainer;
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  let ip: string;

  beforeAll(async () => {
    [server, target, control] = await Promise.all([
      startHttpServer('slowclose-server'),
      startClient('slowclose-target'),
      startClient('slowclose-control'),
    ]);
    ip = ipOf(server);
  });
  afterAll(() => stopAll(server, target, control));

  it('delays each FIN by delayMs, data untouched, and nothing after revert', async () => {
    const before = await echoClose(target, ip);
    const beforeServer = await serverClose(target, ip);
    const fault = await chaos.inject({ kind: 'network-slow-close', target, delayMs: DELAY, peer: server });
    const during = await echoClose(target, ip);
    const duringServer = await serverClose(target, ip);
    const controlDuring = await echoClose(control, ip);
    const hostDuring = await hostEchoClose(ip);
    const stats = fault.stats();
    await fault.revert();
    const after = await echoClose(target, ip);

    expect(before.output).toBe('hello');
    expect(before.ms).toBeLessThan(200);
    expect(beforeServer.output).toBe('ok');
    // The target's FIN waits DELAY on its way to the server, the server's FIN DELAY on its way back.
    expect(during.output).toBe('hello');
    // Lower bounds are absolute: a held FIN cannot arrive early, while a noisy baseline can be slow.
    expect(during.ms).toBeGreaterThanOrEqual(2 * DELAY - 5);
    expect(during.ms - before.ms).toBeLessThan(2 * DELAY + 300);
    // Server closes first: one FIN delayed (and the target's own, after nc has exited).
    expect(duringServer.output).toBe('ok');
    expect(duringServer.ms).toBeGreaterThanOrEqual(DELAY - 5);
    expect(duringServer.ms - beforeServer.ms).toBeLessThan(DELAY + 300);
    expect(stats.closesDelayed).toBeGreaterThanOrEqual(3);
    expect(stats.connections).toBe(2);
    expect(controlDuring.output).toBe('hello');
    expect(controlDuring.ms).toBeLessThan(200);
    expect(hostDuring).toBeLessThan(200);
    expect(after.output).toBe('hello');
    expect(after.ms).toBeLessThan(200);
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
  });

  it('refuses bad parameters and applies nothing', async () => {
    const bad = [{}, { delayMs: -1 }, { delayMs: 'slow' }, { delayMs: 10, port: 0 }, { delayMs: 10, closeMs: 3 }];
    for (const params of bad) {
      await expect(chaos.inject({ kind: 'network-slow-close', target, ...params } as never)).rejects.toThrow(
        ChaosSpecError,
      );
    }
    await expect(chaos.inject({ kind: 'network-slow-close', target } as never)).rejects.toThrow(
      /delayMs is missing; expected a number of milliseconds/,
    );
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
  });

  it('stacks, reverts twice, and reverts quietly after the target is gone', async () => {
    const f1 = await chaos.inject({ kind: 'network-slow-close', target, delayMs: DELAY });
    const f2 = await chaos.inject({ kind: 'network-slow-close', target, delayMs: DELAY, port: 9001 });
    const during = await echoClose(target, ip);
    await f1.revert();
    await f1.revert();
    await f2.revert();
    await f2.revert();
    expect(during.ms).toBeGreaterThanOrEqual(2 * DELAY - 10);
    expect((await echoClose(target, ip)).ms).toBeLessThan(200);

    const doomed = await startClient('slowclose-doomed');
    const f3 = await chaos.inject({ kind: 'network-slow-close', target: doomed, delayMs: 10 });
    await doomed.stop({ timeout: 0 });
    await expect(f3.revert()).resolves.toBeUndefined();
  });

  it('leaves nothing behind when the process holding it is SIGKILLed', async () => {
    const child = await startInjector('network-slow-close', target, { delayMs: DELAY });
    const during = await echoClose(target, ip);
    await sigkill(child);
    const after = await echoClose(target, ip);
    expect(during.ms).toBeGreaterThanOrEqual(2 * DELAY - 10);
    expect(after.output).toBe('hello');
    expect(after.ms).toBeLessThan(200);
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
  });
});
