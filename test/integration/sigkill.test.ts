// Faults are bpf_links and an in-process proxy: the kernel drops both when the
// process that holds them dies, so a SIGKILL mid-fault leaves the target normal.
// The packet path's iptables chains (latency) let packets through once their reader
// is gone (--queue-bypass) and are journaled: the next run's reaper deletes them.
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sigkill, startInjector } from '../helpers/injector.js';
import { curlTimes, ipOf, startClient, startHttpServer, stopAll } from '../helpers/containers.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { journalOf } from '../helpers/fault-contract.js';
import { median } from '../helpers/stats.js';
import { Journal } from '../../src/journal/journal.js';
import { cgroupDirOf } from '../helpers/target-info.js';
import { udpEchoRound } from '../helpers/udp.js';

describe('a test process killed with SIGKILL', () => {
  let server: StartedTestContainer;
  let client: StartedTestContainer;
  beforeAll(async () => {
    [server, client] = await Promise.all([startHttpServer('kill-server'), startClient('kill-client')]);
  });
  afterAll(() => stopAll(server, client));

  it('leaves no packet loss behind', async () => {
    await udpEchoRound(ipOf(server), 9000, 50); // settle ARP
    const child = await startInjector('network-loss', server, { percent: 100 });
    const during = await udpEchoRound(ipOf(server), 9000, 200, 300);
    expect(await attachedPrograms(await cgroupDirOf(server))).toEqual(['vc_drop_ingress', 'vc_drop_egress']);
    await sigkill(child);
    const after = await udpEchoRound(ipOf(server), 9000, 200, 300);
    expect(during.lost).toBe(200);
    expect(after.lost).toBe(0);
    expect(await attachedPrograms(await cgroupDirOf(server))).toEqual([]);
  });

  it('leaves no latency (nor a redirect to a dead proxy) behind', async () => {
    const url = `http://${ipOf(server)}:8080/`;
    const child = await startInjector('network-latency', client, { latencyMs: 300 });
    const during = median(await curlTimes(client, url, 5));
    await sigkill(child);
    const after = median(await curlTimes(client, url, 10));
    expect(during).toBeGreaterThan(290);
    expect(after).toBeLessThan(50);
    expect(await attachedPrograms(await cgroupDirOf(client))).toEqual([]);
    // What the dead run journaled is the next run's to reap (here, now): nothing of it is left.
    const written = journalOf(child.pid);
    expect(written.length).toBeGreaterThan(0);
    const { reverted, failed } = await new Journal().reap();
    expect(failed.filter((f) => f.entry.pid === child.pid)).toEqual([]);
    expect(
      reverted
        .filter((e) => e.pid === child.pid)
        .map((e) => e.description)
        .sort(),
    ).toEqual(written);
    expect(journalOf(child.pid)).toEqual([]);
  });
});
