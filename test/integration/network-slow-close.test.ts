import net from 'node:net';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { ipOf, sh, startClient, startHttpServer, stopAll } from '../helpers/containers.js';
import { faultContract } from '../helpers/fault-contract.js';
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
  let ip: string;
  beforeAll(async () => {
    server = await startHttpServer('slowclose-server');
    ip = ipOf(server);
  });
  afterAll(() => stopAll(server));

  const env = faultContract({
    kind: 'network-slow-close',
    start: (name) => startClient(name),
    params: () => ({ delayMs: DELAY, peer: server }),
    measure: (c) => echoClose(c, ip),
    // The target's FIN waits DELAY on its way to the server, the server's FIN DELAY on its way back:
    // a held FIN cannot arrive early, so the lower bound is absolute.
    affected: (m) => {
      expect(m.output).toBe('hello');
      expect(m.ms).toBeGreaterThanOrEqual(2 * DELAY - 5);
    },
    normal: (m) => {
      expect(m.output).toBe('hello');
      expect(m.ms).toBeLessThan(DELAY);
    },
    counts: (s) => {
      expect(s.connections).toBe(1);
      expect(s.closesDelayed).toBeGreaterThanOrEqual(2);
    },
    applied: async (c) => attachedPrograms(await cgroupDirOf(c)),
    host: async () => (await hostEchoClose(ip)) < DELAY,
    bad: [
      ['no delayMs', {}, /delayMs is missing; expected a number of milliseconds from 0 to 600000/],
      ['negative delayMs', { delayMs: -1 }, /delayMs is -1; expected a number of milliseconds/],
      ['delayMs as a word', { delayMs: 'slow' }, /delayMs is "slow"; expected a number of milliseconds/],
      ['port 0', { delayMs: 10, port: 0 }, /port is 0; expected an integer port from 1 to 65535/],
      ['an unknown field', { delayMs: 10, closeMs: 3 }, /closeMs is 3; expected no such field/],
    ],
    sigkill: 'reaped by the next run', // the packet path's iptables chains are journaled
  });

  it('delays each FIN by delayMs, data untouched, also when the server closes first', async () => {
    const before = await echoClose(env.target, ip);
    const beforeServer = await serverClose(env.target, ip);
    const fault = await chaos.inject({ kind: 'network-slow-close', target: env.target, delayMs: DELAY, peer: server });
    const during = await echoClose(env.target, ip);
    const duringServer = await serverClose(env.target, ip);
    const stats = fault.stats();
    await fault.revert();

    expect(beforeServer.output).toBe('ok');
    expect(during.output).toBe('hello');
    expect(during.ms).toBeGreaterThanOrEqual(2 * DELAY - 5);
    expect(during.ms - before.ms).toBeLessThan(2 * DELAY + 300);
    // Server closes first: one FIN delayed (and the target's own, after nc has exited).
    expect(duringServer.output).toBe('ok');
    expect(duringServer.ms).toBeGreaterThanOrEqual(DELAY - 5);
    expect(duringServer.ms - beforeServer.ms).toBeLessThan(DELAY + 300);
    const seen = JSON.stringify({ before, beforeServer, during, duringServer, stats });
    expect(stats.closesDelayed, seen).toBeGreaterThanOrEqual(3);
    expect(stats.connections, seen).toBe(2);
  });
});
