import Docker from 'dockerode';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { beforeEach, describe, expect, it } from 'vitest';
import { faultContract } from '../helpers/fault-contract.js';
import { chaos, ChaosSpecError } from 'vitest-chaos';
import { IMAGES, sh, startHttpServer, stopAll, testLabels } from '../helpers/containers.js';
import { cgroupState, cgroupValue, hostState, MiB, processesIn } from '../helpers/resources.js';

const docker = new Docker();
const UNLIMITED = '9223372036854771712';

/** Allocates and writes `mib` MiB in a new process of the container; its exit code (137: SIGKILL, the OOM killer). */
async function allocate(c: StartedTestContainer, mib: number): Promise<number> {
  const r = await sh(c, `node -e 'const a=[];for(let i=0;i<${mib / 16};i++)a.push(Buffer.allocUnsafeSlow(16<<20).fill(1))'`);
  return r.exitCode;
}

describe('memory-limit', () => {
  const env = faultContract({
    kind: 'memory-limit',
    start: (name) => startHttpServer(name),
    applied: async (c) => ({ cgroups: await cgroupState(c), processes: await processesIn(c) }),
    host: () => hostState(),
    // Cgroup values, processes and files outlive the process: the journal entries written first let the next run undo them.
    sigkill: 'reaped by the next run',
    params: () => ({ bytes: 512 * MiB }),
    measure: (c) => cgroupValue(c, 'memory/memory.limit_in_bytes'),
    affected: (limit) => expect(limit).toBe(String(512 * MiB)),
    normal: (limit) => expect(limit).toBe(UNLIMITED),
    counts: (s) => expect(s.limitBytes).toBe(512 * MiB),
    bad: [
      ['no bytes', {}, /bytes is missing; expected an integer number of bytes from 4194304 \(4 MiB\)/],
      ['too few bytes', { bytes: 4096 }, /bytes is 4096; expected an integer number of bytes from 4194304/],
      ['fractional bytes', { bytes: 5e6 + 0.5 }, /bytes is 5000000.5; expected an integer number of bytes/],
      ['an unknown field', { bytes: 64 * MiB, swap: 0 }, /swap is 0; expected no such field/],
    ],
  });
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  beforeEach(() => {
    ({ target, control } = env);
  });

  it('gets a process that allocates past the limit OOM-killed, counts it, and lifts the limit on revert', async () => {
    const [state, procs, controlState, host] = [
      await cgroupState(target),
      await processesIn(target),
      await cgroupState(control),
      hostState(),
    ];
    expect(state['memory/memory.limit_in_bytes']).toBe(UNLIMITED);
    expect(await allocate(target, 256)).toBe(0);

    const fault = await chaos.inject({ kind: 'memory-limit', target, bytes: 128 * MiB });
    expect(await cgroupValue(target, 'memory/memory.limit_in_bytes')).toBe(String(128 * MiB));
    expect(await cgroupValue(target, 'memory/memory.memsw.limit_in_bytes')).toBe(String(128 * MiB));
    const underLimit = await allocate(target, 64);
    const pastLimit = await allocate(target, 256);
    const onControl = await allocate(control, 256);
    const stats = fault.stats();
    await fault.revert();
    const afterRevert = await allocate(target, 256);
    console.info(
      `memory-limit 128 MiB: exit codes ${underLimit} (64 MiB), ${pastLimit} (256 MiB), control ${onControl}, after revert ${afterRevert}; ${JSON.stringify(stats)}`,
    );

    expect(underLimit).toBe(0);
    expect(pastLimit).toBe(137);
    expect(stats.oomKills).toBe(1);
    expect(stats.limitBytes).toBe(128 * MiB);
    expect(onControl).toBe(0);
    expect(afterRevert).toBe(0);
    expect(await processesIn(target)).toEqual(procs); // the server was not the victim
    expect(await cgroupState(target)).toEqual(state);
    expect(await cgroupState(control)).toEqual(controlState);
    expect(hostState()).toEqual(host);
  });

  it('reports the target itself OOM-killed when its main process grows past the limit', async () => {
    // A main process that grows by 16 MiB every 100 ms once told to (SIGUSR2), up to 512 MiB.
    const grower = await new GenericContainer(IMAGES.httpServer)
      .withLabels(testLabels('mem-limit-grower'))
      .withCommand([
        'node',
        '-e',
        "const a=[];process.on('SIGUSR2',()=>setInterval(()=>a.length<32&&a.push(Buffer.allocUnsafeSlow(16<<20).fill(1)),100));console.log('ready');setInterval(()=>{},1000)",
      ])
      // As pid 1 it ignores a signal it has no handler for yet.
      .withWaitStrategy(Wait.forLogMessage('ready'))
      .start();
    try {
      const fault = await chaos.inject({ kind: 'memory-limit', target: grower, bytes: 128 * MiB });
      await docker.getContainer(grower.getId()).kill({ signal: 'SIGUSR2' });
      const exit = await docker.getContainer(grower.getId()).wait();
      const inspected = await docker.getContainer(grower.getId()).inspect();
      await fault.revert();
      console.info(
        `memory-limit on a growing main process: exit ${exit.StatusCode}, OOMKilled ${inspected.State.OOMKilled}; ${JSON.stringify(fault.stats())}`,
      );
      expect(exit.StatusCode).toBe(137);
      expect(inspected.State.OOMKilled).toBe(true);
      expect(fault.stats().targetOomKilled).toBe(1);
      expect(fault.stats().oomKills).toBeGreaterThanOrEqual(1);
    } finally {
      await stopAll(grower);
    }
  });

  it('applies the tightest of two, reverts in any order, and reverts twice quietly', async () => {
    const a = await chaos.inject({ kind: 'memory-limit', target, bytes: 256 * MiB });
    const b = await chaos.inject({ kind: 'memory-limit', target, bytes: 128 * MiB });
    expect(await cgroupValue(target, 'memory/memory.limit_in_bytes')).toBe(String(128 * MiB));
    await b.revert();
    expect(await cgroupValue(target, 'memory/memory.limit_in_bytes')).toBe(String(256 * MiB));
    expect(await cgroupValue(target, 'memory/memory.memsw.limit_in_bytes')).toBe(String(256 * MiB));
    await b.revert();
    await a.revert();
    await a.revert();
    expect(await cgroupValue(target, 'memory/memory.limit_in_bytes')).toBe(UNLIMITED);
    expect(await cgroupValue(target, 'memory/memory.memsw.limit_in_bytes')).toBe(UNLIMITED);
  });

  it('refuses a limit below the memory the target uses, and changes nothing', async () => {
    const before = await cgroupState(target);
    const err = await chaos.inject({ kind: 'memory-limit', target, bytes: 4 * MiB }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChaosSpecError);
    expect((err as Error).message).toMatch(/bytes is 4194304; expected more than the target's memory in use \(\d+ bytes\)/);
    expect(await cgroupState(target)).toEqual(before);
  });
});
