import pg from 'pg';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, type ConnectionLimitStats } from 'vitest-chaos';
import { ipOf, sh, startClient, startHttpServer, stopAll, testLabels } from '../helpers/containers.js';
import { faultContract } from '../helpers/fault-contract.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { cgroupDirOf } from '../helpers/target-info.js';
import { tcxLinksOn, vethOf } from '../helpers/veth.js';

/**
 * From `client`: holds `hold` connections to ip:port open, then one GET on a new
 * connection; curl's exit code (0 answered, 7 refused, 28 timed out) and ms taken.
 */
async function overLimit(client: StartedTestContainer, ip: string, hold: number, port = 8080): Promise<{ exit: number; ms: number }> {
  const opens = Array.from({ length: hold }, (_, i) => `exec ${i + 3}<>/dev/tcp/${ip}/${port} || echo hold-failed`).join('; ');
  const closes = Array.from({ length: hold }, (_, i) => `exec ${i + 3}>&-`).join('; ');
  const { output } = await sh(
    client,
    `${opens}; s=$(date +%s%N); curl -s -o /dev/null --connect-timeout 2 --max-time 3 'http://${ip}:${port}/'; e=$?; t=$(( ($(date +%s%N) - s) / 1000000 )); ${closes}; sleep 0.3; echo "$e $t"`,
  );
  if (output.includes('hold-failed')) throw new Error(`could not hold ${hold} connections to ${ip}:${port}: ${output}`);
  const [exit, ms] = output.trim().split('\n').pop()!.split(' ').map(Number);
  return { exit: exit as number, ms: ms as number };
}

async function pgClient(host: string): Promise<pg.Client> {
  const c = new pg.Client({ host, port: 5432, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 3000 });
  await c.connect();
  return c;
}

describe('connection-limit', () => {
  let client: StartedTestContainer;
  beforeAll(async () => {
    client = await startClient('climit-client');
  });
  afterAll(() => stopAll(client));

  const env = faultContract({
    kind: 'connection-limit',
    start: (name) => startHttpServer(name),
    params: () => ({ max: 2, connections: 'inbound', port: 8080 }),
    // Two connections held, the third refused at once.
    measure: async (c) => (await overLimit(client, ipOf(c), 2)).exit,
    affected: (exit) => expect(exit).toBe(7), // curl: could not connect (RST)
    normal: (exit) => expect(exit).toBe(0),
    counts: (s) => {
      expect(s.accepted).toBe(2);
      expect(s.rejected).toBe(1);
    },
    applied: async (c) => ({ cgroup: attachedPrograms(await cgroupDirOf(c)), veth: tcxLinksOn((await vethOf(c)).hostIfindex) }),
    bad: [
      ['no max', {}, /max is missing; expected an integer number of connections from 0 to 65535/],
      ['a fractional max', { max: 1.5 }, /max is 1.5; expected an integer number of connections from 0 to 65535/],
      ['an unknown action', { max: 1, action: 'drop' }, /action is "drop"; expected one of "reject", "hang"/],
      ['an unknown direction', { max: 1, connections: 'both' }, /connections is "both"; expected one of "inbound", "outbound", "all"/],
      ['a port out of range', { max: 1, port: 70000 }, /port is 70000; expected an integer port from 1 to 65535/],
    ],
    sigkill: 'nothing left',
  });
  const target = () => env.target;

  it('PostgreSQL: the first max connections work, the (max+1)th fails at once; one closed lets one in; revert lets all in', async () => {
    const db = await new GenericContainer('vitest-chaos/postgres:latest')
      .withLabels(testLabels('climit-postgres'))
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/))
      .start();
    const open: pg.Client[] = [];
    try {
      const host = ipOf(db);
      const fault = await chaos.inject({ kind: 'connection-limit', target: db, max: 3, connections: 'inbound', port: 5432 });
      for (let i = 0; i < 3; i++) open.push(await pgClient(host));
      const answers = await Promise.all(open.map(async (c) => (await c.query('SELECT 1 AS one')).rows[0].one));
      const t0 = performance.now();
      const fourth = await pgClient(host).then(
        (c): string => {
          open.push(c);
          return 'connected';
        },
        (e: NodeJS.ErrnoException): string => e.code ?? e.message,
      );
      const fourthMs = performance.now() - t0;
      const during = fault.stats();
      await open.shift()!.end();
      await new Promise((r) => setTimeout(r, 300));
      const afterClose = fault.stats();
      open.push(await pgClient(host)); // the freed place
      await fault.revert();
      for (let i = 0; i < 5; i++) open.push(await pgClient(host));
      const final = fault.stats();
      console.info(
        `connection-limit on PostgreSQL max 3: 4th ${fourth} in ${fourthMs.toFixed(1)} ms; stats during ${JSON.stringify(during)}, after one closed ${JSON.stringify(afterClose)}, final ${JSON.stringify(final)}; ${open.length} open after revert`,
      );
      expect(answers).toEqual([1, 1, 1]);
      expect(fourth).toBe('ECONNREFUSED');
      expect(fourthMs).toBeLessThan(1000);
      expect(during).toEqual({ accepted: 3, rejected: 1, current: 3 });
      expect(afterClose.current).toBe(2);
      expect(final.accepted).toBe(4);
      expect(open).toHaveLength(8);
    } finally {
      await Promise.allSettled(open.map((c) => c.end()));
      await stopAll(db);
    }
  }, 60_000);

  it('counts the connections the target already had open when it started', async () => {
    const db = await new GenericContainer('vitest-chaos/postgres:latest')
      .withLabels(testLabels('climit-postgres-open'))
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/))
      .start();
    const open: pg.Client[] = [];
    try {
      const host = ipOf(db);
      for (let i = 0; i < 2; i++) open.push(await pgClient(host));
      const fault = await chaos.inject({ kind: 'connection-limit', target: db, max: 3, connections: 'inbound', port: 5432 });
      const atStart = fault.stats();
      open.push(await pgClient(host));
      const fourth = await pgClient(host).then(
        (c): string => {
          open.push(c);
          return 'connected';
        },
        (e: NodeJS.ErrnoException): string => e.code ?? e.message,
      );
      await open.shift()!.end(); // one of those open before the fault
      await new Promise((r) => setTimeout(r, 300));
      const afterClose = fault.stats();
      open.push(await pgClient(host));
      const stats = fault.stats();
      await fault.revert();
      console.info(
        `connection-limit with 2 open before: at start ${JSON.stringify(atStart)}, 4th ${fourth}, after one of them closed ${JSON.stringify(afterClose)}, then ${JSON.stringify(stats)}`,
      );
      expect(atStart).toEqual({ accepted: 0, rejected: 0, current: 2 });
      expect(fourth).toBe('ECONNREFUSED');
      expect(afterClose.current).toBe(2);
      expect(stats).toEqual({ accepted: 2, rejected: 1, current: 3 });
    } finally {
      await Promise.allSettled(open.map((c) => c.end()));
      await stopAll(db);
    }
  }, 60_000);

  it("action 'hang' (also read from mode: 'hang') leaves the connection over the limit waiting for its connect timeout", async () => {
    const ip = ipOf(target());
    const fault = await chaos.inject({ kind: 'connection-limit', target: target(), max: 1, connections: 'inbound', mode: 'hang' } as never);
    const during = await overLimit(client, ip, 1);
    const stats = fault.stats() as unknown as ConnectionLimitStats;
    await fault.revert();
    const after = await overLimit(client, ip, 1);
    console.info(`connection-limit hang: curl ${JSON.stringify(during)}, stats ${JSON.stringify(stats)}, after ${JSON.stringify(after)}`);
    expect(during.exit).toBe(28);
    expect(during.ms).toBeGreaterThanOrEqual(1900);
    expect(stats.accepted).toBe(1);
    expect(stats.rejected).toBeGreaterThanOrEqual(1); // the SYN and its retransmissions
    expect(after.exit).toBe(0);
  });

  it("connections 'outbound' limits what the target opens, only to the peer named", async () => {
    const other = await startHttpServer('climit-other');
    try {
      const ip = ipOf(target());
      const fault = await chaos.inject({ kind: 'connection-limit', target: client, max: 1, connections: 'outbound', peer: target() });
      const toPeer = await overLimit(client, ip, 1);
      const toOther = await overLimit(client, ipOf(other), 2);
      const stats = fault.stats();
      await fault.revert();
      const after = await overLimit(client, ip, 1);
      console.info(
        `connection-limit outbound: to the peer ${JSON.stringify(toPeer)}, to another ${JSON.stringify(toOther)}, stats ${JSON.stringify(stats)}`,
      );
      expect(toPeer.exit).toBe(7); // connect() refused with EPERM
      expect(toPeer.ms).toBeLessThan(1000);
      expect(toOther.exit).toBe(0);
      expect(stats).toEqual({ accepted: 1, rejected: 1, current: 0 });
      expect(after.exit).toBe(0);
    } finally {
      await stopAll(other);
    }
  });
});
