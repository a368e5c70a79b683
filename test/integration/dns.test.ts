import Docker from 'dockerode';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { GenericContainer, Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { faultContract } from '../helpers/fault-contract.js';
import { chaos } from 'vitest-chaos';
import { cgroup2Mount } from '../../src/targets/cgroup-v2.js';
import { IMAGES, stopAll, testLabels } from '../helpers/containers.js';
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
    [backend, other] = await Promise.all([node('dns-backend', 'backend', 'db.backend'), node('dns-other', 'other')]);
    backendIp = backend.getIpAddress(network.getName());
    otherIp = other.getIpAddress(network.getName());
  });
  afterAll(async () => {
    await stopAll(backend, other);
    await network?.stop();
  });

  const env = faultContract({
    kind: 'dns',
    start: (name) => node(name),
    params: () => ({ names: ['backend'] }),
    measure: async (c) => (await resolveMany(c, 'backend', 1))[0],
    affected: (answer) => expect(answer).toBe('ENOTFOUND'),
    normal: (answer) => expect(answer).toBe(backendIp),
    applied: async (c) => ({ links: await attachedPrograms(await cgroupDirOf(c)), forwarders: await strangersInNetns(c) }),
    bad: [
      ['no names', {}, /names is missing; expected a non-empty list of names or glob patterns/],
      ['an empty list', { names: [] }, /names is \[\]; expected a non-empty list of names/],
      ['a name, not a list', { names: 'backend' }, /names is "backend"; expected a non-empty list of names/],
      ['a bad name', { names: ['bad name!'] }, /names.0 is "bad name!"; expected a name or glob pattern/],
      ['answer REFUSED', { names: ['backend'], answer: 'REFUSED' }, /answer is "REFUSED"; expected one of "SERVFAIL", "NXDOMAIN", "drop"/],
      ['percent -1', { names: ['backend'], percent: -1 }, /percent is -1; expected a number from 0 to 100/],
      ['an unknown field', { names: ['backend'], ttl: 5 }, /ttl is 5; expected no such field/],
    ],
    // The forwarder in the target's network namespace outlives the process: its journal entry lets the next run end it.
    sigkill: 'reaped by the next run',
  });
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  beforeEach(() => {
    ({ target, control } = env);
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
});
