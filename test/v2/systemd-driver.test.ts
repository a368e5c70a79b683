// Target resolution and an eBPF fault under Docker's systemd cgroup driver,
// on pure cgroup v2 (run in the guest of scripts/v2-guest.sh).
import { readFileSync, statSync } from 'node:fs';
import Docker from 'dockerode';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { TargetResolver } from '../../src/targets/resolve-target.js';
import { ipOf, startHttpServer, stopAll } from '../helpers/containers.js';
import { udpEchoRound } from '../helpers/udp.js';
import { expectPureV2WithSystemdDriver } from './v2-helpers.js';

describe('targets under the systemd cgroup driver', () => {
  let target: StartedTestContainer;
  let control: StartedTestContainer;

  beforeAll(async () => {
    expectPureV2WithSystemdDriver();
    [target, control] = await Promise.all([startHttpServer('v2-net-target'), startHttpServer('v2-net-control')]);
  });
  afterAll(() => stopAll(target, control));

  it('resolves a container to /system.slice/docker-<id>.scope under the cgroup2 mount', async () => {
    const t = await new TargetResolver().resolve(target);
    const pid = (await new Docker().getContainer(target.getId()).inspect()).State.Pid;
    console.info(`v2 target: ${t.cgroup.relative} -> ${t.cgroup.directory} (id ${t.cgroup.id})`);
    expect(t.cgroup.relative).toBe(`/system.slice/docker-${target.getId()}.scope`);
    expect(t.cgroup.directory).toBe(`/sys/fs/cgroup/system.slice/docker-${target.getId()}.scope`);
    expect(readFileSync(`${t.cgroup.directory}/cgroup.procs`, 'utf8').split('\n')).toContain(String(pid));
    expect(t.cgroup.id).toBe(statSync(t.cgroup.directory, { bigint: true }).ino);
  });

  it('network-loss 100% stops the target traffic (cgroup_skb on its scope), not the control, and lifts on revert', async () => {
    const N = 50;
    // also settles ARP, whose queue drops the first packets to a new neighbour
    const before = await Promise.all([udpEchoRound(ipOf(target), 9000, N, 2000), udpEchoRound(ipOf(control), 9000, N, 2000)]);
    const fault = await chaos.inject({ kind: 'network-loss', target, percent: 100 });
    const [onTarget, onControl] = await Promise.all([
      udpEchoRound(ipOf(target), 9000, N, 2000),
      udpEchoRound(ipOf(control), 9000, N, 2000),
    ]);
    const stats = fault.stats();
    await fault.revert();
    const after = await udpEchoRound(ipOf(target), 9000, N, 2000);
    console.info(
      `v2 network-loss 100%: target lost ${onTarget.lost}/${N} (before ${before[0].lost}, after ${after.lost}), control lost ${onControl.lost}; ${JSON.stringify(stats)}`,
    );
    expect(before.map((r) => r.lost)).toEqual([0, 0]);
    expect(onTarget.lost).toBe(N);
    expect(stats.ingressDropped + stats.egressDropped).toBeGreaterThanOrEqual(N);
    expect(onControl.lost).toBe(0);
    expect(after.lost).toBe(0);
  });
});
