import Docker from 'dockerode';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { GenericContainer, Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, ChaosSpecError } from 'vitest-chaos';
import { Journal } from '../../src/journal/journal.js';
import { cgroup2Mount } from '../../src/targets/cgroup-v2.js';
import { IMAGES, stopAll, testLabels } from '../helpers/containers.js';
import { sigkill, startInjector } from '../helpers/datapath.js';
import { dnsProbe, resolveMany } from '../helpers/dns-probe.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { cgroupDirOf } from '../helpers/target-info.js';

/** Processes in the container's network namespace that are not in its cgroup: our forwarder. */
async function strangersInNetns(c: StartedTestContainer): Promise<number> {
  const pid = (await new Docker().getContainer(c.getId()).inspect()).State.Pid;
  const ns = readlinkSync(`/proc/${pid}/ns/net`);
  const cgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8').match(/^0::.*$/m)?.[0];
  let n = 0;
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readlinkSync(`/proc/${p}/ns/net`) !== ns) continue;
      if (readFileSync(`/proc/${p}/cgroup`, 'utf8').match(/^0::.*$/m)?.[0] !== cgroup) n++;
    } catch {
      // exited meanwhile
    }
  }
  return n;
}

describe('dns', () => {
  let network: StartedNetwork;
  let backend: StartedTestContainer;
  let other: StartedTestContainer;
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  let backendIp: string;
  let otherIp: string;

  const node = (name: string, ...aliases: string[]) =>
    new GenericContainer(IMAGES.httpServer)
      .withNetwork(network)
      .withNetworkAliases(...aliases)
      .withLabels(testLabels(name))
      .withWaitStrategy(Wait.forLogMessage(/listening http=/))
      .start();

  beforeAll(async () => {
    network = await new Network().start();
    [backend, other, target, control] = await Promise.all([
      node('dns-backend', 'backend', 'db.backend'),
      node('dns-other', 'other'),
      node('dns-target', 'api'),
      node('dns-control', 'ctl'),
    ]);
    backendIp = backend.getIpAddress(network.getName());
    otherIp = other.getIpAddress(network.getName());
  });
  afterAll(async () => {
    await stopAll(backend, other, target, control);
    await network?.stop();
  });

  const resolvesBackend = () => ({
    lookup: backendIp,
    resolve: backendIp,
    udp: `0:${backendIp}`,
    udpFrom: '127.0.0.11:53',
    tcp: `0:${backendIp}`,
  });
  const outcome = ({ ms: _ms, ...rest }: Awaited<ReturnType<typeof dnsProbe>>) => rest;

  it('answers NXDOMAIN for matching names, other names resolve as before; all gone after revert', async () => {
    const before = await dnsProbe(target, 'backend');
    const fault = await chaos.inject({ kind: 'dns', target, names: ['backend'], answer: 'NXDOMAIN' });
    const during = await dnsProbe(target, 'backend');
    const duringOther = await dnsProbe(target, 'other');
    const controlDuring = await dnsProbe(control, 'backend');
    const strangers = await strangersInNetns(target);
    const stats = fault.stats();
    await fault.revert();
    const after = await dnsProbe(target, 'backend');

    expect(outcome(before)).toEqual(resolvesBackend());
    // glibc, c-ares, unconnected UDP (sendmsg4 + recvmsg4) and TCP all see rcode 3, from 127.0.0.11:53.
    expect(outcome(during)).toEqual({ lookup: 'ENOTFOUND', resolve: 'ENOTFOUND', udp: '3', udpFrom: '127.0.0.11:53', tcp: '3' });
    expect(outcome(duringOther)).toEqual({
      lookup: otherIp,
      resolve: otherIp,
      udp: `0:${otherIp}`,
      udpFrom: '127.0.0.11:53',
      tcp: `0:${otherIp}`,
    });
    expect(outcome(controlDuring)).toEqual(resolvesBackend());
    expect(stats).toMatchObject({ dnsLookupsFailed: 4, dnsQueries: 8, dnsForwarded: 4, dnsForwardFailed: 0 });
    expect(stats).toMatchObject({ dnsConnectsRedirected: 6, dnsSendsRedirected: 2, dnsRepliesRewritten: 6 });
    expect(strangers).toBe(1); // our forwarder
    expect(outcome(after)).toEqual(resolvesBackend());
    expect(await strangersInNetns(target)).toBe(0);
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
    expect(await attachedPrograms(await cgroupDirOf(control))).toEqual([]);
    expect((await attachedPrograms(cgroup2Mount())).filter((p) => p.startsWith('vc_dns'))).toEqual([]);
  });

  it('answers SERVFAIL', async () => {
    const fault = await chaos.inject({ kind: 'dns', target, names: ['backend'], answer: 'SERVFAIL' });
    const during = await dnsProbe(target, 'backend');
    await fault.revert();
    expect(outcome(during)).toEqual({ lookup: 'EAI_AGAIN', resolve: 'ESERVFAIL', udp: '2', udpFrom: '127.0.0.11:53', tcp: '2' });
  });

  it('drops matching queries: the target waits for its own timeouts', async () => {
    const fault = await chaos.inject({ kind: 'dns', target, names: ['backend'], answer: 'drop' });
    const during = await dnsProbe(target, 'backend');
    const other = await dnsProbe(target, 'other');
    await fault.revert();
    expect(outcome(during)).toEqual({ lookup: 'EAI_AGAIN', resolve: 'ETIMEOUT', udp: 'timeout', udpFrom: '', tcp: 'timeout' });
    expect(during.ms.lookup).toBeGreaterThanOrEqual(990); // RES_OPTIONS timeout:1 attempts:1
    expect(during.ms.resolve).toBeGreaterThanOrEqual(690); // c-ares timeout 700 ms
    expect(during.ms.udp).toBeGreaterThanOrEqual(1490);
    expect(other.lookup).toBe(otherIp);
    expect(other.ms.lookup).toBeLessThan(500);
  });

  it('matches glob patterns', async () => {
    const fault = await chaos.inject({ kind: 'dns', target, names: ['*.backend'] });
    const sub = await dnsProbe(target, 'db.backend');
    const bare = await dnsProbe(target, 'backend');
    await fault.revert();
    const subAfter = await dnsProbe(target, 'db.backend');
    expect([sub.lookup, sub.resolve]).toEqual(['ENOTFOUND', 'ENOTFOUND']);
    expect(outcome(bare)).toEqual(resolvesBackend());
    expect(subAfter.resolve).toBe(backendIp);
  });

  it('fails percent of the matching lookups, the same ones for the same seed', async () => {
    const runOnce = async () => {
      const fault = await chaos.inject({ kind: 'dns', target, names: ['backend'], answer: 'SERVFAIL', percent: 50, seed: 5 });
      const answers = await resolveMany(target, 'backend', 40);
      const stats = fault.stats();
      await fault.revert();
      return { answers, stats };
    };
    const a = await runOnce();
    const b = await runOnce();
    const failed = a.answers.filter((x) => x === 'ESERVFAIL').length;
    // Binomial(40, 0.5): 20 +/- 3.2; the bounds are 4.4 sigma.
    expect(failed).toBeGreaterThanOrEqual(6);
    expect(failed).toBeLessThanOrEqual(34);
    expect(a.answers.every((x) => x === 'ESERVFAIL' || x === backendIp)).toBe(true);
    expect(a.stats.dnsLookupsFailed).toBe(failed);
    expect(b.answers).toEqual(a.answers);
  });

  it('refuses bad parameters and applies nothing', async () => {
    const bad = [
      {},
      { names: [] },
      { names: 'backend' },
      { names: ['bad name!'] },
      { names: ['backend'], answer: 'REFUSED' },
      { names: ['backend'], percent: -1 },
      { names: ['backend'], ttl: 5 },
    ];
    for (const params of bad) {
      await expect(chaos.inject({ kind: 'dns', target, ...params } as never)).rejects.toThrow(ChaosSpecError);
    }
    await expect(chaos.inject({ kind: 'dns', target, names: ['backend'], answer: 'REFUSED' } as never)).rejects.toThrow(
      /answer is "REFUSED"; expected one of "SERVFAIL", "NXDOMAIN", "drop"/,
    );
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
    expect(await strangersInNetns(target)).toBe(0);
  });

  it('stacks (both faults apply), reverts twice, and reverts quietly after the target is gone', async () => {
    const f1 = await chaos.inject({ kind: 'dns', target, names: ['backend'] });
    const f2 = await chaos.inject({ kind: 'dns', target, names: ['other'], answer: 'SERVFAIL' });
    const both = [await dnsProbe(target, 'backend'), await dnsProbe(target, 'other')];
    await f1.revert();
    await f1.revert();
    const second = [await dnsProbe(target, 'backend'), await dnsProbe(target, 'other')];
    await f2.revert();
    await f2.revert();
    const none = await dnsProbe(target, 'other');
    expect([both[0]!.resolve, both[1]!.resolve]).toEqual(['ENOTFOUND', 'ESERVFAIL']);
    expect([second[0]!.resolve, second[1]!.resolve]).toEqual([backendIp, 'ESERVFAIL']);
    expect(none.resolve).toBe(otherIp);
    expect(await strangersInNetns(target)).toBe(0);

    const doomed = await node('dns-doomed');
    const f3 = await chaos.inject({ kind: 'dns', target: doomed, names: ['backend'] });
    await doomed.stop({ timeout: 0 });
    await expect(f3.revert()).resolves.toBeUndefined();
  });

  it('leaves nothing behind when the process holding it is SIGKILLed', async () => {
    const child = await startInjector('dns', target, { names: ['backend'] });
    const during = await dnsProbe(target, 'backend');
    const strangers = await strangersInNetns(target);
    await sigkill(child);
    const { reverted } = await new Journal().reap();
    const after = await dnsProbe(target, 'backend');
    expect(during.resolve).toBe('ENOTFOUND');
    expect(strangers).toBe(1);
    expect(reverted.map((e) => e.description)).toContain(`dns forwarder in the network namespace of ${target.getName().replace(/^\//, '')}`);
    expect(outcome(after)).toEqual(resolvesBackend());
    expect(await strangersInNetns(target)).toBe(0);
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
  });
});
