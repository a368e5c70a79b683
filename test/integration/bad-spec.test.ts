import Docker from 'dockerode';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, ChaosSpecError, type FaultSpec } from 'vitest-chaos';
import { IMAGES, testLabels, ipOf, startHttpServer, stopAll } from '../helpers/containers.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { cgroupDirOf } from '../helpers/target-info.js';
import { udpEchoRound } from '../helpers/udp.js';

describe('a bad spec', () => {
  const docker = new Docker();
  let target: StartedTestContainer;
  let stranger: Docker.Container;

  beforeAll(async () => {
    target = await startHttpServer('bad-spec-target');
    // Started behind Testcontainers' back: not ours to touch.
    stranger = await docker.createContainer({ Image: IMAGES.client, Labels: testLabels('stranger') });
    await stranger.start();
  });
  afterAll(async () => {
    await stranger?.remove({ force: true });
    await stopAll(target);
  });

  const cases: [string, () => FaultSpec, RegExp][] = [
    ['percent 150', () => ({ kind: 'network-loss', target, percent: 150 }), /percent is 150; expected a number from 0 to 100/],
    [
      'a negative latency',
      () => ({ kind: 'network-latency', target, latencyMs: -5 }),
      /latencyMs is -5; expected a number of milliseconds/,
    ],
    [
      'an unknown kind',
      () => ({ kind: 'network-chaos', target }) as unknown as FaultSpec,
      /kind is "network-chaos"; expected one of "network-loss", "network-partition", "network-corrupt"/,
    ],
    [
      'a missing target',
      () => ({ kind: 'network-loss', percent: 10 }) as unknown as FaultSpec,
      /target is missing; expected a started container/,
    ],
    [
      'a misspelt field',
      () => ({ kind: 'network-latency', target, latncyMs: 10 }) as unknown as FaultSpec,
      /latencyMs is missing; expected a number of milliseconds from 0 to 60000; latncyMs is 10; expected no such field/,
    ],
    [
      'a bad direction',
      () => ({ kind: 'network-loss', target, percent: 5, direction: 'up' }) as unknown as FaultSpec,
      /direction is "up"; expected one of "egress", "ingress", "both"/,
    ],
    [
      'a bad peer',
      () => ({ kind: 'network-loss', target, percent: 5, peer: '300.1.1.1/8' }),
      /peer is "300.1.1.1\/8"; expected a started container/,
    ],
    ['a bad port', () => ({ kind: 'network-partition', target, port: 70000 }), /port is 70000; expected an integer port from 1 to 65535/],
    [
      'a container we did not start',
      () => ({ kind: 'network-loss', target: stranger.id, percent: 100 }),
      /target is "[\w-]+"; expected a container this run started with Testcontainers/,
    ],
    [
      'a container that does not exist',
      () => ({ kind: 'network-loss', target: 'no-such-container', percent: 100 }),
      /target is "no-such-container"; expected a running container \(no container 'no-such-container' exists\)/,
    ],
  ];

  it.each(cases)('%s is refused with a clear error and nothing applied', async (_name, spec, message) => {
    const err = await chaos.inject(spec()).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ChaosSpecError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toMatch(/Nothing was applied\.$/);
    expect(chaos.activeFaults()).toEqual([]);
    expect(await attachedPrograms(await cgroupDirOf(target))).toEqual([]);
    expect((await udpEchoRound(ipOf(target), 9000, 100)).lost).toBe(0);
  });

  it('refuses a stopped container', async () => {
    const s = await docker.createContainer({ Image: IMAGES.client, Labels: { ...testLabels('stopped'), 'org.testcontainers': 'true' } });
    try {
      await expect(chaos.inject({ kind: 'network-loss', target: s.id, percent: 10 })).rejects.toThrow(
        /expected a running container \(container '\w+' is not running \(state: created\)\)/,
      );
    } finally {
      await s.remove({ force: true });
    }
  });

  it('accepts a container it was told it may target', async () => {
    chaos.allow(stranger.id);
    const f = await chaos.inject({ kind: 'network-loss', target: stranger.id, percent: 1 });
    expect(f.target.id).toBe(stranger.id);
    await f.revert();
  });
});
