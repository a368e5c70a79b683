// Connection faults on the target's packets: connections it accepts (the test
// process through a mapped port, another container) and connections already
// open at inject (a pg pool warmed up before), with real clients (pg, ioredis).
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { ipOf, sh, startClient, startHttpServer, stopAll, testLabels } from '../helpers/containers.js';
import { median } from '../helpers/stats.js';
import { ourChainsOf } from '../helpers/datapath.js';

async function startPostgres(name: string): Promise<StartedTestContainer> {
  return new GenericContainer('vitest-chaos/postgres:latest')
    .withLabels(testLabels(name))
    .withExposedPorts(5432)
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/))
    .start();
}

async function startRedis(name: string): Promise<StartedTestContainer> {
  return new GenericContainer('vitest-chaos/redis:latest')
    .withLabels(testLabels(name))
    .withExposedPorts(6379)
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .start();
}

const pgConfig = (c: StartedTestContainer) => ({ host: c.getHost(), port: c.getMappedPort(5432), user: 'postgres', database: 'postgres' });

async function queryTimes(client: pg.Client | pg.Pool, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await client.query('SELECT 1');
    out.push(performance.now() - t0);
  }
  return out;
}

const chainsOf = (c: StartedTestContainer) => ourChainsOf(c);

describe('connection faults on packets: inbound and already-open connections', () => {
  let db: StartedTestContainer;
  let control: StartedTestContainer;
  let redis: StartedTestContainer;
  beforeAll(async () => {
    [db, control, redis] = await Promise.all([startPostgres('pp-db'), startPostgres('pp-control'), startRedis('pp-redis')]);
  });
  afterAll(() => stopAll(db, control, redis));

  it('latency 100 ms on PostgreSQL adds 100 +/- 5 ms per query from the test process, on a pooled and a fresh connection', async () => {
    const pooled = new pg.Client(pgConfig(db));
    const ctl = new pg.Client(pgConfig(control));
    await Promise.all([pooled.connect(), ctl.connect()]);
    try {
      const base = median(await queryTimes(pooled, 30));
      const ctlBase = median(await queryTimes(ctl, 30));
      const injectedAt = performance.now();
      const fault = await chaos.inject({ kind: 'network-latency', target: db, latencyMs: 100 });
      const onPooled = median(await queryTimes(pooled, 20));
      const fresh = new pg.Client(pgConfig(db));
      await fresh.connect();
      const onFresh = median(await queryTimes(fresh, 20));
      await fresh.end();
      const ctlDuring = median(await queryTimes(ctl, 20));
      const stats = fault.stats();
      const heldMs = performance.now() - injectedAt;
      // The kept rules of the netns (both families), while the fault is in force.
      expect(await chainsOf(db)).toEqual(['VC-S-I', 'VC-S-O', 'ip6:VC-S-I', 'ip6:VC-S-O']);
      await fault.revert();
      const after = median(await queryTimes(pooled, 20));
      console.info(
        `pg latency 100: pooled ${base.toFixed(2)} -> ${onPooled.toFixed(2)} ms, fresh ${onFresh.toFixed(2)} ms, after ${after.toFixed(2)}; ` +
          `control ${ctlBase.toFixed(2)} -> ${ctlDuring.toFixed(2)}; ${JSON.stringify(stats)}`,
      );
      expect(onPooled - base).toBeGreaterThanOrEqual(95);
      expect(onPooled - base).toBeLessThanOrEqual(105);
      expect(onFresh - base).toBeGreaterThanOrEqual(95);
      expect(onFresh - base).toBeLessThanOrEqual(105);
      expect(after - base).toBeLessThan(5);
      expect(ctlDuring - ctlBase).toBeLessThan(5);
      expect(stats.connectionsOpenAtInject).toBe(1);
      // The pooled connection (open at inject, one flow with the packets it then sent) and the fresh one.
      expect(stats.connectionsMatched).toBe(2);
      expect(stats.packetsDelayed).toBeGreaterThanOrEqual(40);
      // The reader learned its wake-up time from idle (it wakes that much early and spins the
      // rest), and the spin stayed within its budget: 2% of one CPU over the time, 2 ms banked.
      expect(stats.wakeUpMs).toBeGreaterThan(0);
      expect(stats.releaseSpinMs).toBeLessThanOrEqual(0.02 * heldMs + 2.5);
      expect(await chainsOf(db)).toEqual([]);
    } finally {
      await Promise.all([pooled.end(), ctl.end()]);
    }
  });

  it('latency with jitter: 100 +/- 40 ms spreads the pooled connection queries around 100', async () => {
    const pool = new pg.Pool({ ...pgConfig(db), max: 2 });
    try {
      const base = median(await queryTimes(pool, 20));
      const fault = await chaos.inject({ kind: 'network-latency', target: db, latencyMs: 100, jitterMs: 40, seed: 5 });
      const times = await queryTimes(pool, 30);
      await fault.revert();
      const sorted = [...times].sort((a, b) => a - b);
      const spread = (sorted[26] as number) - (sorted[3] as number);
      console.info(`pg latency 100 +/- 40: median ${median(times).toFixed(1)}, p10-p90 spread ${spread.toFixed(1)} ms`);
      expect(median(times) - base).toBeGreaterThan(85);
      expect(median(times) - base).toBeLessThan(115);
      expect(spread).toBeGreaterThan(25);
      expect(Math.min(...times)).toBeGreaterThanOrEqual(59);
    } finally {
      await pool.end();
    }
  });

  it('revert during a stream of queries causes no error, and a ramp of steps neither', async () => {
    const pool = new pg.Pool({ ...pgConfig(db), max: 4 });
    let errors = 0;
    let done = 0;
    let stop = false;
    const workers = [0, 1, 2, 3].map(async () => {
      while (!stop) {
        try {
          await pool.query('SELECT pg_sleep(0.01)');
          done++;
        } catch {
          errors++;
        }
      }
    });
    try {
      for (const ms of [50, 100, 200]) {
        const f = await chaos.inject({ kind: 'network-latency', target: db, latencyMs: ms });
        await new Promise((r) => setTimeout(r, 700));
        await f.revert();
      }
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      stop = true;
      await Promise.all(workers);
      await pool.end();
    }
    console.info(`stream through 3 inject/revert steps: ${done} queries, ${errors} errors`);
    expect(done).toBeGreaterThan(20);
    expect(errors).toBe(0);
  });

  const redisClient = (c: StartedTestContainer) =>
    new Redis({ host: c.getHost(), port: c.getMappedPort(6379), maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });

  it('network-reset on Redis resets the open ioredis connection of the test process', async () => {
    const client = redisClient(redis);
    const errors: string[] = [];
    client.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
    await client.connect();
    expect(await client.ping()).toBe('PONG');
    const fault = await chaos.inject({ kind: 'network-reset', target: redis, afterBytes: 0 });
    const during = await client.ping().then(
      () => 'PONG',
      (e: Error) => e.message,
    );
    await new Promise((r) => setTimeout(r, 200));
    const stats = fault.stats();
    await fault.revert();
    const fresh = redisClient(redis);
    await fresh.connect();
    const after = await fresh.ping();
    fresh.disconnect();
    client.disconnect();
    console.info(`redis reset: ping -> ${during}; errors ${JSON.stringify(errors)}; ${JSON.stringify(stats)}`);
    expect(during).not.toBe('PONG');
    // The test process reaches Redis through docker-proxy, which passes the RST on as a close.
    expect(during).toMatch(/Connection is closed|ECONNRESET/);
    expect(stats.connectionsHit).toBe(1);
    expect(stats.connectionsOpenAtInject).toBe(1);
    expect(after).toBe('PONG');
  });

  it('network-timeout on Redis stalls the open ioredis connection; revert hands it back unbroken', async () => {
    const client = redisClient(redis);
    await client.connect();
    expect(await client.ping()).toBe('PONG');
    const fault = await chaos.inject({ kind: 'network-timeout', target: redis });
    const t0 = performance.now();
    const pending = client.set('k', 'v');
    const during = await Promise.race([pending.then(() => 'answered'), new Promise((r) => setTimeout(() => r('stalled'), 800))]);
    const stats = fault.stats();
    await fault.revert();
    const answer = await pending; // the held request and answer are delivered, not lost
    const elapsed = performance.now() - t0;
    const after = await client.get('k');
    client.disconnect();
    console.info(`redis timeout: ${during}, answered ${answer} after ${elapsed.toFixed(0)} ms; ${JSON.stringify(stats)}`);
    expect(during).toBe('stalled');
    expect(answer).toBe('OK');
    expect(after).toBe('v');
    expect(stats.connectionsHit).toBe(1);
    expect(stats.packetsHeld).toBeGreaterThanOrEqual(1);
  });

  it('network-slow-close on Redis delays the close of an ioredis connection by delayMs', async () => {
    const closeTime = async () => {
      const client = redisClient(redis);
      await client.connect();
      await client.ping();
      const closed = new Promise<void>((r) => client.once('end', () => r()));
      const t0 = performance.now();
      await client.quit();
      await closed;
      return performance.now() - t0;
    };
    const base = await closeTime();
    const fault = await chaos.inject({ kind: 'network-slow-close', target: redis, delayMs: 500 });
    const slow = await closeTime();
    const stats = fault.stats();
    await fault.revert();
    const after = await closeTime();
    console.info(`redis slow close: ${base.toFixed(1)} -> ${slow.toFixed(1)} -> ${after.toFixed(1)} ms; ${JSON.stringify(stats)}`);
    expect(slow).toBeGreaterThanOrEqual(480);
    expect(base).toBeLessThan(100);
    expect(after).toBeLessThan(100);
    expect(stats.packetsDelayed).toBeGreaterThanOrEqual(1);
  });
});

/**
 * curl in the client container: one connection, n requests on it (curl reuses
 * it for every URL of one invocation); each request's own time in ms.
 */
async function reusedTimes(client: StartedTestContainer, url: string, n: number): Promise<number[]> {
  const urls = Array(n).fill(`-o /dev/null '${url}'`).join(' ');
  const { output, exitCode } = await sh(client, `curl -s --max-time 20 -w '%{time_total} %{num_connects}\\n' ${urls}`);
  if (exitCode !== 0) throw new Error(`curl failed (${exitCode}): ${output}`);
  const lines = output.trim().split('\n');
  // Every request after the first reused the connection (no new connect).
  expect(lines.slice(1).every((l) => l.endsWith(' 0'))).toBe(true);
  return lines.map((l) => Number(l.split(' ')[0]) * 1000);
}

describe('latency with the client in another container: once per round trip', () => {
  let server: StartedTestContainer;
  let client: StartedTestContainer;
  let control: StartedTestContainer;
  let url: string;
  beforeAll(async () => {
    [server, client, control] = await Promise.all([
      startHttpServer('pp-c-server'),
      startClient('pp-c-client'),
      startClient('pp-c-control'),
    ]);
    url = `http://${ipOf(server)}:8080/delay?ms=1`;
  });
  afterAll(() => stopAll(server, client, control));

  for (const on of ['server', 'client'] as const) {
    it(`a fault on the ${on} only: 100 ms per request on an open connection, 200 for the first (handshake)`, async () => {
      const base = median((await reusedTimes(client, url, 11)).slice(1));
      // peer: for the server (inbound) the client's address, for the client (outbound) the server's; the control is another client.
      const fault = await chaos.inject(
        on === 'server'
          ? { kind: 'network-latency', target: server, latencyMs: 100, peer: client }
          : { kind: 'network-latency', target: client, latencyMs: 100, peer: server },
      );
      const during = await reusedTimes(client, url, 11);
      const ctl = median((await reusedTimes(control, url, 11)).slice(1));
      const stats = fault.stats();
      await fault.revert();
      const after = median((await reusedTimes(client, url, 11)).slice(1));
      const reused = median(during.slice(1));
      console.info(
        `latency 100 on the ${on}: reused ${base.toFixed(1)} -> ${reused.toFixed(1)} ms (first ${during[0]?.toFixed(1)}), ` +
          `control ${ctl.toFixed(1)}, after ${after.toFixed(1)}; ${JSON.stringify(stats)}`,
      );
      // Once, not twice: the server's answer (or the client's request) is held, not both.
      expect(Math.min(...during.slice(1))).toBeGreaterThanOrEqual(98);
      expect(reused - base).toBeLessThan(150);
      // The first request also waits for the held SYN-ACK (server) or SYN (client).
      expect(during[0]).toBeGreaterThanOrEqual(198);
      expect(stats.connectionsMatched).toBe(1);
      expect(ctl).toBeLessThan(base + 50);
      expect(after).toBeLessThan(base + 50);
    });
  }
});

describe('stream faults on a connection the target opened before the inject', () => {
  let server: StartedTestContainer;
  let client: StartedTestContainer;
  beforeAll(async () => {
    [server, client] = await Promise.all([startHttpServer('pp-o-server'), startClient('pp-o-client')]);
    // One connection to the server's TCP echo, held open by nc: lines appended to /tmp/in go out, echoes land in /tmp/out.
    await sh(client, `mkfifo /tmp/in; (tail -f /tmp/in | nc ${ipOf(server)} 9001 > /tmp/out 2>/dev/null &) ; sleep 0.3`);
  });
  afterAll(() => stopAll(server, client));

  /** Sends a line on the open connection; whether its echo came back within ms. */
  async function echoed(line: string, ms: number): Promise<boolean> {
    const r = await sh(
      client,
      `echo ${line} >> /tmp/in; for i in $(seq ${ms / 50}); do grep -qx ${line} /tmp/out && exit 0; sleep 0.05; done; exit 1`,
    );
    return r.exitCode === 0;
  }

  it('network-timeout stalls it (peer-filtered), revert delivers what was held', async () => {
    expect(await echoed('before', 2000)).toBe(true);
    const fault = await chaos.inject({ kind: 'network-timeout', target: client, peer: server });
    const during = await echoed('during', 1000);
    const stats = fault.stats();
    await fault.revert();
    const held = await echoed('during', 2000); // the held line arrives after the revert
    const after = await echoed('after', 2000);
    console.info(
      `network-timeout on an open outbound connection: during ${during}, held then delivered ${held}, after ${after}; ${JSON.stringify(stats)}`,
    );
    expect(during).toBe(false);
    expect(held).toBe(true);
    expect(after).toBe(true);
    expect(stats.connectionsOpenAtInject).toBe(1);
    expect(stats.connectionsHit).toBe(1);
  });
});
