// A user's chaos test (copied as chaos.test.ts), run by test/integration/package.test.ts in a project that installed
// the packed tarball. The second test proves the first one's fault ended with it.
import dgram from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';

// Paced one datagram a ms: on 2 busy cores a faster burst overflows the echo server's socket.
const N = 400;
let server: StartedTestContainer;
let ip: string;

async function echoRound(count: number): Promise<number> {
  const sock = dgram.createSocket('udp4');
  const seen = new Set<number>();
  sock.on('message', (msg) => seen.add(Number(msg.toString().split(':')[1])));
  sock.bind(0);
  await once(sock, 'listening');
  for (let i = 0; i < count; i++) {
    sock.send(`u:${i}`, 9000, ip);
    await sleep(1);
  }
  await sleep(500);
  sock.close();
  return count - seen.size;
}

beforeAll(async () => {
  server = await new GenericContainer('vitest-chaos/http-server:latest')
    .withLabels({ 'vitest-chaos.test': 'user-project', 'vitest-chaos.run': process.env.VC_RUN_ID ?? String(process.pid) })
    .withWaitStrategy(Wait.forLogMessage(/listening http=/))
    .start();
  ip = server.getIpAddress(server.getNetworkNames()[0]!);
  // baseline (it also settles ARP), as the last test measures
  const baseline = [await echoRound(200)];
  while (baseline.length < 3 && baseline[baseline.length - 1]! > 0) baseline.push(await echoRound(200));
  expect(Math.min(...baseline)).toBeLessThan(20);
});
afterAll(() => server?.stop());

it('loses half the packets the server receives under network-loss', async () => {
  const fault = await chaos.inject({ kind: 'network-loss', target: server, percent: 50, direction: 'ingress', seed: 5 });
  const lost = await echoRound(N);
  const stats = fault.stats();
  console.log(`USER-RESULT during ${JSON.stringify({ lost, sent: N, ...stats })}`);
  // the kernel's count is exact; what the client lost adds what a busy machine dropped
  expect(stats.ingressSeen).toBeGreaterThanOrEqual(N * 0.9);
  expect(stats.ingressDropped).toBeGreaterThan(stats.ingressSeen * 0.4);
  expect(stats.ingressDropped).toBeLessThan(stats.ingressSeen * 0.6);
  expect(lost).toBeGreaterThanOrEqual(stats.ingressDropped);
  // no revert: the fault ends with this test
});

it("starts with the previous test's fault gone", async () => {
  const active = chaos.activeFaults().length;
  // A fault left active loses about half of every round; a busy machine may drop some
  // datagrams of a round, so up to three rounds, and the best must lose under 10%.
  const rounds: number[] = [];
  while (rounds.length < 3 && (rounds.length === 0 || rounds[rounds.length - 1]! > 0)) rounds.push(await echoRound(N));
  console.log(`USER-RESULT after ${JSON.stringify({ rounds, sent: N, active })}`);
  expect(active).toBe(0);
  expect(Math.min(...rounds)).toBeLessThan(N * 0.1);
});
