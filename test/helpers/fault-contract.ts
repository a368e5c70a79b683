// The contract every fault kind keeps, as one block of cases each kind's
// integration test runs with its own parameters (docs/adding-a-fault-kind.md):
// the effect measured on a real container and gone after revert, a control
// container and the host untouched, bad specs refused with nothing applied,
// apply twice and revert twice, revert after the target has gone, and SIGKILL
// of the injecting process leaving nothing (or the next run reaping it).
//
// Containers are shared by the cases (beforeAll). The kind's own cases, declared
// after the call in the same describe, reach them through the returned object.
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, ChaosSpecError, type FaultSpec } from 'vitest-chaos';
import { Journal } from '../../src/journal/journal.js';
import { releaseIdle } from '../../src/targets/release-idle.js';
import { stopAll } from './containers.js';
import { killInjectors, sigkill, startInjector } from './injector.js';

type Params = Record<string, unknown>;

export interface FaultContractDef<M> {
  kind: FaultSpec['kind'];
  /** Starts a container like the target (used for the target, the control and the one that goes away). */
  start(name: string): Promise<StartedTestContainer>;
  /** Starts the control when it must differ from start() (e.g. a client beside a client target). */
  startControl?(name: string): Promise<StartedTestContainer>;
  /** The kind's parameters of a valid fault on that target (no kind, no target). */
  params(target: StartedTestContainer): Params;
  /** Measures the fault's effect on a container, short and bounded (or give `arm`). */
  measure?(c: StartedTestContainer): Promise<M>;
  /**
   * For a kind whose measurement cannot begin while the fault is in force (crash-on-syscall:
   * a `docker exec` that writes is itself signalled): sets a measurement up on c and returns
   * the function that takes it. The contract arms every measurement of a case before the
   * fault it measures, and takes it afterwards. Default: measure(c), set up when taken.
   */
  arm?(c: StartedTestContainer): Promise<() => Promise<M>>;
  /** Asserts that m shows the fault (baseline: the same container measured before it). */
  affected(m: M, baseline: M): void;
  /** Asserts that m shows no fault. */
  normal(m: M, baseline: M): void;
  /** Asserts that the fault counted what it matched during the effect case (a fault that matched nothing must show it). */
  counts?(stats: Record<string, number>, during: M): void;
  /** What the kind changes on a container, as a comparable snapshot: links, cgroup files, qdiscs, processes. */
  applied(c: StartedTestContainer): Promise<unknown> | unknown;
  /** The host's state this kind could change (compared before, during and after the fault). */
  host?(): Promise<unknown> | unknown;
  /** Specs the kind refuses: a name, its parameters, the error expected. */
  bad: [string, Params, RegExp][];
  /** false for kinds that cannot be undone (process-kill, container-restart): revert does nothing and says so. Default true. */
  revertible?: boolean;
  /** With two faults applied, reverting the first leaves the second's effect. Default true for revertible kinds. */
  stacks?: boolean;
  /**
   * What a SIGKILL of the injecting process leaves: 'nothing left' when the kernel or
   * the process's death ends the fault (bpf_links, an in-process proxy, a kind that
   * cannot be undone), 'reaped by the next run' when its journal entries must undo it.
   */
  sigkill: 'nothing left' | 'reaped by the next run';
}

export interface ContractContainers {
  readonly target: StartedTestContainer;
  readonly control: StartedTestContainer;
}

/**
 * Our journal entries once the packet path's idle kept rules are taken down, as
 * at the end of a test file: what a fault left after its revert.
 */
export async function journalAfterRevert(): Promise<string[]> {
  await releaseIdle();
  return journalOf();
}

/** Journal entries written by a process (ours by default). */
export function journalOf(pid = process.pid): string[] {
  return new Journal()
    .entries()
    .filter((e) => e.pid === pid)
    .map((e) => e.description)
    .sort();
}

/** The parameters as the injecting child takes them: containers become `container:<id>` references. */
function forChild(params: Params): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(params)) {
    out[k] =
      v && typeof v === 'object' && typeof (v as StartedTestContainer).getId === 'function'
        ? `container:${(v as StartedTestContainer).getId()}`
        : v;
  }
  return out;
}

export function faultContract<M>(def: FaultContractDef<M>): ContractContainers {
  const revertible = def.revertible ?? true;
  const stacks = def.stacks ?? revertible;
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  let n = 0;
  if (!def.arm && !def.measure) throw new Error(`${def.kind} contract: give measure or arm`);
  const arm = def.arm ?? (async (c: StartedTestContainer) => () => def.measure!(c));
  const measure = async (c: StartedTestContainer) => (await arm(c))();
  const spec = (t: StartedTestContainer) => ({ kind: def.kind, target: t, ...def.params(t) }) as FaultSpec;
  // A kind that cannot be undone leaves its target changed for good: the next case gets a new one.
  const renew = async () => {
    if (revertible) return;
    const old = target;
    target = await def.start(`${def.kind}-target-${++n}`);
    await stopAll(old);
  };

  beforeAll(async () => {
    [target, control] = await Promise.all([def.start(`${def.kind}-target`), (def.startControl ?? def.start)(`${def.kind}-control`)]);
  });
  afterAll(async () => {
    killInjectors();
    await stopAll(target, control);
  });

  describe(`${def.kind} contract`, () => {
    it.each(def.bad)('refuses %s with a clear error and applies nothing', async (_name, params, message) => {
      const [before, host] = [await def.applied(target), await def.host?.()];
      const err = await chaos.inject({ kind: def.kind, target, ...params } as unknown as FaultSpec).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ChaosSpecError);
      expect((err as Error).message).toMatch(message);
      expect(chaos.activeFaults()).toEqual([]);
      expect(await def.applied(target)).toEqual(before);
      expect(await def.host?.()).toEqual(host);
      expect(await journalAfterRevert()).toEqual([]);
    });

    it(
      revertible
        ? 'changes the target as measured, leaves the control and the host alone, and is gone after revert'
        : 'changes the target as measured, leaves the control and the host alone; revert cannot undo it and says so',
      async () => {
        const [baseline, controlBaseline] = await Promise.all([measure(target), measure(control)]);
        def.normal(baseline, baseline);
        const [before, controlBefore, host] = [await def.applied(target), await def.applied(control), await def.host?.()];

        const [duringOf, controlDuringOf] = [await arm(target), await arm(control)];
        const fault = await chaos.inject(spec(target));
        const during = await duringOf();
        const controlDuring = await controlDuringOf();
        const hostDuring = await def.host?.();
        const stats = fault.stats() as Record<string, number>;
        await fault.revert();
        await fault.revert();
        const after = await measure(target);
        console.info(
          `${def.kind} contract: before ${JSON.stringify(baseline)}, during ${JSON.stringify(during)}, after ${JSON.stringify(after)}; stats ${JSON.stringify(stats)}`,
        );

        def.affected(during, baseline);
        def.counts?.(stats, during);
        def.normal(controlDuring, controlBaseline);
        expect(hostDuring).toEqual(host);
        expect(fault.active).toBe(false);
        if (revertible) {
          def.normal(after, baseline);
          expect(await def.applied(target)).toEqual(before);
        } else {
          def.affected(after, baseline);
          expect((fault.stats() as Record<string, number>).revertible).toBe(0);
        }
        expect(await def.applied(control)).toEqual(controlBefore);
        expect(await def.host?.()).toEqual(host);
        expect(await journalAfterRevert()).toEqual([]);
        await renew();
      },
    );

    it('applies twice and reverts each twice, quietly', async () => {
      const baseline = await measure(target);
      const before = await def.applied(target);
      const [bothOf, secondOf] = [await arm(target), stacks ? await arm(target) : null];
      const a = await chaos.inject(spec(target));
      const b = await chaos.inject(spec(target));
      def.affected(await bothOf(), baseline);
      await a.revert();
      await a.revert();
      if (secondOf) def.affected(await secondOf(), baseline);
      await b.revert();
      await b.revert();
      expect([a.active, b.active]).toEqual([false, false]);
      if (revertible) {
        def.normal(await measure(target), baseline);
        expect(await def.applied(target)).toEqual(before);
      } else {
        expect([a, b].map((f) => (f.stats() as Record<string, number>).revertible)).toEqual([0, 0]);
      }
      expect(await journalAfterRevert()).toEqual([]);
      await renew();
    });

    it('reverts quietly after the target has gone, and forgets its journal entries', async () => {
      const doomed = await def.start(`${def.kind}-doomed`);
      const fault = await chaos.inject(spec(doomed));
      await doomed.stop({ timeout: 0 });
      await expect(fault.revert()).resolves.toBeUndefined();
      await expect(fault.revert()).resolves.toBeUndefined();
      expect(fault.active).toBe(false);
      expect(await journalAfterRevert()).toEqual([]);
    });

    it(`leaves ${def.sigkill === 'nothing left' ? 'nothing' : 'what the next run reaps'} when the injecting process is killed with SIGKILL`, async () => {
      const baseline = await measure(target);
      const before = await def.applied(target);
      const duringOf = await arm(target);
      const child = await startInjector(def.kind, target, forChild(def.params(target)));
      def.affected(await duringOf(), baseline);
      const written = journalOf(child.pid);
      await sigkill(child);
      const { reverted, failed } = await new Journal().reap();
      const reaped = reverted.filter((e) => e.pid === child.pid).map((e) => e.description);
      expect(failed.filter((f) => f.entry.pid === child.pid)).toEqual([]);
      if (def.sigkill === 'nothing left') {
        expect(reaped).toEqual([]);
      } else {
        expect(written.length).toBeGreaterThan(0);
        expect(reaped.sort()).toEqual(written);
      }
      expect(journalOf(child.pid)).toEqual([]);
      if (revertible) {
        await expect
          .poll(
            async () => {
              try {
                def.normal(await measure(target), baseline);
                return true;
              } catch {
                return false;
              }
            },
            { timeout: 5000, interval: 200 },
          )
          .toBe(true);
        expect(await def.applied(target)).toEqual(before);
      }
      await renew();
    });
  });

  return {
    get target() {
      return target;
    },
    get control() {
      return control;
    },
  };
}
