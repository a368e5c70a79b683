// Safety controls on a fault's targets: many candidates with a seeded choice
// (Chaos Mesh's modes), the limits (maxTargets, maxInjectionsPerMinute) and dry
// run. Which containers a fault reached is measured by UDP echo traffic to each.
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, createChaos } from 'vitest-chaos';
import { removeRunRate } from '../../src/api/injection-rate.js';
import { IMAGES, ipOf, startHttpServer, stopAll, testLabels } from '../helpers/containers.js';
import { attachedPrograms } from '../helpers/kernel-state.js';
import { cgroupDirOf } from '../helpers/target-info.js';
import { udpEchoRound } from '../helpers/udp.js';

const UDP = 9000;
const N = 100;

describe('safety: many targets, limits, dry run', () => {
  let replicas: StartedTestContainer[] = [];

  /** Datagrams lost to each replica (by container name), one replica after the other (2 busy cores). */
  const lostPerReplica = async (cs = replicas) => {
    const rounds: Awaited<ReturnType<typeof udpEchoRound>>[] = [];
    for (const c of cs) rounds.push(await udpEchoRound(ipOf(c), UDP, N));
    return Object.fromEntries(cs.map((c, i) => [c.getName().replace(/^\//, ''), rounds[i]!.lost]));
  };
  const faulted = (lost: Record<string, number>) =>
    Object.keys(lost)
      .filter((k) => lost[k] === N)
      .sort();
  const noBpfLeft = async () => {
    for (const c of replicas) expect(await attachedPrograms(await cgroupDirOf(c))).toEqual([]);
  };

  beforeAll(async () => {
    replicas = await Promise.all([0, 1, 2, 3].map((i) => startHttpServer(`replica-${i}`)));
    // settles ARP so the first datagrams are not lost to a cold neighbour table
    expect(Object.values(await lostPerReplica())).toEqual([0, 0, 0, 0]);
  });
  afterAll(() => stopAll(...replicas));

  it("mode 'one' among three faults exactly the one it reports, and the same seed chooses the same one", async () => {
    const three = replicas.slice(0, 3);
    const chosen: string[] = [];
    for (const seed of [5, 5, 6, 7, 8, 9]) {
      const fault = await chaos.inject({ kind: 'network-loss', target: three, mode: 'one', percent: 100, seed });
      const lost = await lostPerReplica(three);
      await fault.revert();
      console.info(`mode one seed ${seed}: reported ${fault.targets.map((t) => t.name)}, lost per replica ${JSON.stringify(lost)}`);
      expect(fault.targets).toHaveLength(1);
      expect(faulted(lost)).toEqual([fault.target.name]);
      expect(Object.values(lost).filter((l) => l === 0)).toHaveLength(2); // the others untouched
      expect(fault.stats().ingressDropped).toBe(N);
      chosen.push(fault.target.name);
    }
    expect(chosen[1]).toBe(chosen[0]); // same seed, same choice
    expect(new Set(chosen).size).toBeGreaterThan(1); // and the seed does choose
    expect(Object.values(await lostPerReplica(three))).toEqual([0, 0, 0]);
    await noBpfLeft();
  });

  it("mode 'fixed-percent' 50 of four faults two; one handle reverts both", async () => {
    const fault = await chaos.inject({ kind: 'network-loss', target: replicas, mode: 'fixed-percent', value: 50, percent: 100, seed: 3 });
    const lost = await lostPerReplica();
    const byTarget = fault.statsByTarget();
    await fault.revert();
    const after = await lostPerReplica();
    console.info(
      `fixed-percent 50: reported ${fault.targets.map((t) => t.name)}, lost ${JSON.stringify(lost)}, kernel ${JSON.stringify(byTarget)}`,
    );
    expect(fault.targets).toHaveLength(2);
    expect(faulted(lost)).toEqual(fault.targets.map((t) => t.name).sort());
    expect(Object.values(lost).filter((l) => l === 0)).toHaveLength(2);
    for (const t of fault.targets) expect(byTarget[t.name]!.ingressDropped).toBe(N);
    expect(fault.toJSON()).toMatchObject({ targets: fault.targets, dryRun: false });
    expect(after, 'after revert').toEqual(Object.fromEntries(Object.keys(lost).map((k) => [k, 0])));
    await noBpfLeft();
  });

  it('all or nothing: a failure on one target reverts the targets already applied', async () => {
    // network-corrupt needs the target's host veth; a container without a network has none,
    // so the 2nd target fails after the 1st was applied.
    const nonet = await new GenericContainer(IMAGES.httpServer)
      .withNetworkMode('none')
      .withLabels(testLabels('no-network'))
      .withWaitStrategy(Wait.forLogMessage(/listening http=/))
      .start();
    try {
      const both = [replicas[0]!, nonet];
      const lone = await chaos.inject({ kind: 'network-corrupt', target: replicas[0]!, percent: 100, seed: 1 });
      const corrupted = await lostPerReplica([replicas[0]!]);
      await lone.revert();
      console.info(`network-corrupt 100% alone on ${lone.target.name}: lost ${JSON.stringify(corrupted)} of ${N}`);
      expect(corrupted[Object.keys(corrupted)[0]!]!).toBeGreaterThan(N / 4); // applied, it does break this traffic
      await expect(chaos.inject({ kind: 'network-corrupt', target: both, percent: 100, seed: 1 })).rejects.toThrow(
        /target is "[^"]+"; expected a container on a bridge network/,
      );
      expect(chaos.activeFaults()).toEqual([]);
      expect(Object.values(await lostPerReplica())).toEqual([0, 0, 0, 0]);
    } finally {
      await stopAll(nonet);
    }
  });

  it('refuses over maxTargets, per fault and per experiment, before anything is applied', async () => {
    const limited = createChaos({ maxTargets: 2, progress: false });
    await expect(limited.inject({ kind: 'network-loss', target: replicas.slice(0, 3), percent: 100 })).rejects.toThrow(
      /target is "3 targets \(.*\)"; expected at most 2 per fault \(the plugin option maxTargets is 2; mode "all" chose 3\)\. Nothing was applied\./,
    );
    expect(limited.activeFaults()).toEqual([]);
    expect(Object.values(await lostPerReplica())).toEqual([0, 0, 0, 0]);
    await noBpfLeft();
    // Two faults of two targets each: fine alone, over the limit together.
    await expect(
      limited.experiment({
        name: 'too wide',
        hypothesis: 'refused before the baseline',
        steadyState: { load: { url: `http://${ipOf(replicas[0]!)}:8080/`, rps: 5 }, slos: { errorRate: { max: 0.5 } } },
        faults: [
          { kind: 'network-loss', target: replicas.slice(0, 2), percent: 100 },
          { kind: 'network-loss', target: replicas.slice(2, 4), percent: 100 },
        ],
        durationMs: 1000,
      }),
    ).rejects.toThrow(/faults is "4 distinct targets \(.*\)"; expected at most 2 per experiment \(the plugin option maxTargets is 2\)/);
    expect(Object.values(await lostPerReplica())).toEqual([0, 0, 0, 0]);
    await noBpfLeft();
  });

  it('refuses over maxInjectionsPerMinute before anything is applied', async () => {
    const runPid = 2_000_000_000 + Math.floor(Math.random() * 1e6); // its own count, not this run's
    const limited = createChaos({ maxInjectionsPerMinute: 2, runPid, progress: false });
    for (let i = 0; i < 2; i++) await (await limited.inject({ kind: 'network-loss', target: replicas[0]!, percent: 100 })).revert();
    await expect(limited.inject({ kind: 'network-loss', target: replicas[1]!, percent: 100 })).rejects.toThrow(
      /maxInjectionsPerMinute is 3; expected at most 2 injections in any 60 s of this run/,
    );
    expect(limited.activeFaults()).toEqual([]);
    expect(Object.values(await lostPerReplica())).toEqual([0, 0, 0, 0]);
    await noBpfLeft();
    removeRunRate(runPid);
  });

  it('dry run: 100% loss leaves traffic untouched, targets chosen as for real, reported dry', async () => {
    const dry = createChaos({ dryRun: true, progress: false });
    const fault = await dry.inject({ kind: 'network-loss', target: replicas, mode: 'fixed', value: 2, percent: 100, seed: 3 });
    const lost = await lostPerReplica();
    expect(fault.dryRun).toBe(true);
    expect(String(fault)).toMatch(/^dry-run network-loss/);
    // the same choice a real fault with this seed makes
    const real = await chaos.plan({ kind: 'network-loss', target: replicas, mode: 'fixed', value: 2, percent: 100, seed: 3 });
    expect(fault.targets.map((t) => t.name)).toEqual(real.chosen.map((t) => t.name));
    expect(Object.values(lost)).toEqual([0, 0, 0, 0]);
    await noBpfLeft();
    await fault.revert();
    // Bad input is refused in dry run as for real.
    await expect(dry.inject({ kind: 'network-loss', target: replicas, mode: 'fixed', value: 0 })).rejects.toThrow(
      /value is 0; expected with mode "fixed", an integer count of targets >= 1/,
    );
    process.env.VITEST_CHAOS_DRY_RUN = '1';
    try {
      expect(createChaos().dryRun).toBe(true);
    } finally {
      delete process.env.VITEST_CHAOS_DRY_RUN;
    }
  });
});
