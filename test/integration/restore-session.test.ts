// The long-lived iptables-restore of a network namespace (src/targets/restore-session.ts):
// transactions commit through it, a failing one is reported (and run the old
// way first), the next one still works, it is faster than a process per
// transaction, and it leaves when idle.
import { statSync } from 'node:fs';
import Docker from 'dockerode';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, stopAll } from '../helpers/containers.js';
import { median } from '../helpers/stats.js';
import { queueChainsIn, sandboxOf } from '../../src/targets/queue-rules.js';
import { restore, restoreOnce, restoreSessions } from '../../src/targets/restore-session.js';

const make = (chain: string) => `*mangle\n:${chain} - [0:0]\n-A ${chain} -p tcp --dport 9 -j RETURN\nCOMMIT\n`;
const drop = (chain: string) => `*mangle\n-F ${chain}\n-X ${chain}\nCOMMIT\n`;

describe('the long-lived iptables-restore of a target netns', () => {
  let server: StartedTestContainer;
  let netns: string;
  beforeAll(async () => {
    server = await startHttpServer('restore-session');
    const docker = new Docker();
    const info = await docker.getContainer(server.getId()).inspect();
    netns = (await sandboxOf(docker, server.getId(), info.State.Pid)) as string;
  });
  afterAll(() => stopAll(server));

  it('commits, reports a failing transaction, goes on, beats a process per transaction, leaves when idle', async () => {
    expect(netns).toBeTruthy();
    await restore(netns, 4, make('VC-Q64999-O'));
    expect(await queueChainsIn(netns)).toEqual(['VC-Q64999-O']);
    const mine = restoreSessions().filter((s) => s.netns === netns);
    expect(mine).toHaveLength(1);
    const pid = (mine[0] as { pid: number }).pid;
    expect(statSync(`/proc/${pid}/ns/net`).ino).toBe(statSync(netns).ino);

    await expect(restore(netns, 4, '*mangle\n-D OUTPUT -j VC-Q64998-O\nCOMMIT\n')).rejects.toThrow(/VC-Q64998-O/);
    await restore(netns, 4, drop('VC-Q64999-O'));
    expect(await queueChainsIn(netns)).toEqual([]);

    const session: number[] = [];
    const once: number[] = [];
    for (let i = 0; i < 10; i++) {
      let t0 = performance.now();
      await restore(netns, 4, make('VC-Q64997-O'));
      await restore(netns, 4, drop('VC-Q64997-O'));
      session.push(performance.now() - t0);
      t0 = performance.now();
      await restoreOnce(netns, 4, make('VC-Q64997-O'));
      await restoreOnce(netns, 4, drop('VC-Q64997-O'));
      once.push(performance.now() - t0);
    }
    console.info(
      `make+drop a chain, median: ${median(session).toFixed(2)} ms through the session, ${median(once).toFixed(2)} ms a process each`,
    );
    expect(median(session)).toBeLessThan(median(once));
    expect(await queueChainsIn(netns)).toEqual([]);

    const alive = () => restoreSessions().some((s) => s.netns === netns);
    expect(alive()).toBe(true);
    const t0 = Date.now();
    while (alive() && Date.now() - t0 < 8000) await new Promise((r) => setTimeout(r, 100));
    expect(alive()).toBe(false);
    const gone = restoreSessions().every((s) => s.netns !== netns);
    expect(gone).toBe(true);
  });
});
