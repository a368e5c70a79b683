// The experiment's own logic (schedule, verdict, what reaches the result) with
// an injector whose faults are plain objects: what the kernel does is measured
// by test/integration/experiment*.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { ActiveFault, AppliedTargets } from '../../src/faults/fault-handle.js';
import { Chaos } from '../../src/api/chaos.js';
import { ChaosSpecError } from '../../src/contracts/errors.js';
import { runExperiment, validateExperiment, type ExperimentOptions, type Injector } from '../../src/experiment/experiment.js';
import { experimentSchema } from '../../src/experiment/options.js';
import type { FaultRecord } from '../../src/experiment/result.js';
import { summarize } from '../../src/experiment/describe.js';
import { FaultSchedule } from '../../src/experiment/fault-schedule.js';
import { Recorder } from '../../src/steady-state/recorder.js';
import { chaosMatchers } from '../../src/api/matchers.js';

interface Spec {
  kind: string;
  seed?: number;
  failRevert?: boolean;
  /** What the fake fault's stats say it matched (the kinds' matched()). */
  hits?: number;
  /** How long its inject takes, ms. */
  injectMs?: number;
}

function injector(): Injector<Spec> & { reverted: string[] } {
  let n = 0;
  const reverted: string[] = [];
  return {
    reverted,
    validate: () => undefined,
    async inject(spec) {
      if (spec.injectMs) await new Promise((r) => setTimeout(r, spec.injectMs));
      const id = `f${++n}`;
      const on = new AppliedTargets<object>();
      on.add(
        { id, name: 'fake' },
        {
          stats: () => ({ matched: spec.hits ?? 1 }),
          async revert() {
            if (spec.failRevert) throw new Error(`${spec.kind} could not be undone`);
            reverted.push(spec.kind);
          },
        },
      );
      return new ActiveFault(id, spec.kind, on, spec.seed ?? 0, { peer: '10.9.9.9' }, () => undefined, {
        matched: (st: { matched: number }) => st.matched,
        matchedWhat: 'packets',
      });
    },
  };
}

const ok = { name: 'always', fn: async () => true, intervalMs: 20 };

function options(over: Partial<ExperimentOptions<Spec>>): ExperimentOptions<Spec> {
  return {
    name: 'unit',
    hypothesis: 'the probe passes',
    steadyState: { probes: [ok], slos: { availability: { min: 0.5 } }, windowMs: 100 },
    baselineMs: 200,
    faults: [{ kind: 'a' }],
    durationMs: 400,
    recovery: { withinMs: 1000, maxWaitMs: 300 },
    ...over,
  };
}

describe('an experiment whose revert fails', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  afterEach(() => {
    unhandled.length = 0;
  });

  it('reports the failed revert of a timed step in the result and its error, never as an unhandled rejection', async () => {
    const inj = injector();
    const r = await runExperiment(
      options({ faults: [{ durationMs: 100, fault: { kind: 'breaks', failRevert: true } }, { kind: 'fine' }] }),
      { injector: inj, seed: 1 },
    );
    await new Promise((res) => setTimeout(res, 50)); // let a stray rejection surface
    expect(unhandled).toEqual([]);
    expect(r.verdict).toBe('aborted');
    expect(r.error).toMatch(/revert of fault 0 \(breaks\) failed: breaks could not be undone/);
    expect(r.faults[0]!.revertError).toBe('breaks could not be undone');
    expect(r.faults[1]!.revertError).toBeUndefined();
    expect(inj.reverted).toEqual(['fine']);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it('reports a revert that fails at the end of the observe phase the same way', async () => {
    const r = await runExperiment(options({ faults: [{ kind: 'breaks', failRevert: true }] }), { injector: injector(), seed: 1 });
    expect(unhandled).toEqual([]);
    expect(r.verdict).toBe('aborted');
    expect(r.error).toMatch(/revert of fault 0 \(breaks\) failed/);
    expect(r.faults[0]!.revertError).toBe('breaks could not be undone');
  });
});

describe('default window', () => {
  it('fits a baseline shorter than 1000 ms', () => {
    const opts = options({ steadyState: { probes: [ok], slos: { availability: { min: 0.5 } } }, baselineMs: 500, durationMs: 2000 });
    expect(() => validateExperiment(opts, injector())).not.toThrow();
    expect(experimentSchema.parse(opts).steadyState.windowMs).toBe(500);
  });

  it('fits a duration shorter than 1000 ms, and stays 1000 ms when both are longer', () => {
    const short = options({ steadyState: { probes: [ok], slos: { availability: { min: 0.5 } } }, baselineMs: 2000, durationMs: 300 });
    expect(experimentSchema.parse(short).steadyState.windowMs).toBe(300);
    const long = options({ steadyState: { probes: [ok], slos: { availability: { min: 0.5 } } }, baselineMs: 2000, durationMs: 3000 });
    expect(experimentSchema.parse(long).steadyState.windowMs).toBe(1000);
  });

  it('still names a window the user gave that does not fit', () => {
    const opts = options({
      steadyState: { probes: [ok], slos: { availability: { min: 0.5 } }, windowMs: 800 },
      baselineMs: 500,
      durationMs: 2000,
    });
    expect(() => validateExperiment(opts, injector())).toThrow(
      /steadyState\.windowMs is 800; expected a window no longer than baselineMs \(500 ms\)/,
    );
  });

  it('runs an experiment with baselineMs 500 and no window', async () => {
    const r = await runExperiment(
      options({ steadyState: { probes: [ok], slos: { availability: { min: 0.5 } } }, baselineMs: 500, durationMs: 600 }),
      { injector: injector(), seed: 1 },
    );
    expect(r.windowMs).toBe(500);
    expect(r.verdict).toBe('validated');
    expect(r.phases.baseline!.probes).toBeGreaterThan(5);
  });
});

describe('a fault that matched nothing', () => {
  it('makes an experiment whose SLOs held inconclusive, naming the fault and why', async () => {
    const r = await runExperiment(options({ faults: [{ kind: 'a' }, { kind: 'network-partition', hits: 0 }] }), {
      injector: injector(),
      seed: 1,
    });
    expect(r.verdict).toBe('inconclusive');
    expect(r.reason).toBe(
      'every SLO held, but nothing was tested: fault 1 network-partition(peer=10.9.9.9) on fake matched nothing: 0 packets while in force',
    );
    expect(r.faults.map((f) => f.matched)).toEqual([1, 0]);
    expect(summarize(r)).toContain('fault 1 network-partition(peer=10.9.9.9) on fake matched nothing');
    const m = chaosMatchers.toHoldSteadyState(r);
    expect(m.pass).toBe(false);
    expect(m.message()).toMatch(/was inconclusive:\n {2}every SLO held, but nothing was tested: fault 1 network-partition/);
  });

  it('leaves an experiment whose faults all matched validated', async () => {
    const r = await runExperiment(options({ faults: [{ kind: 'a', hits: 3 }] }), { injector: injector(), seed: 1 });
    expect(r.verdict).toBe('validated');
    expect(r.faults[0]!.matched).toBe(3);
    expect(r.faults[0]!.matchedWhat).toBe('packets');
  });

  it('does not hide a breach: a rejected experiment stays rejected', async () => {
    const failing = { name: 'never', fn: async () => false, intervalMs: 20 };
    const r = await runExperiment(
      options({
        steadyState: { probes: [failing], slos: { availability: { min: 0.5 } }, windowMs: 100 },
        faults: [{ kind: 'a', hits: 0 }],
        abortOnBreach: false,
      }),
      { injector: injector(), seed: 1 },
    );
    expect(r.verdict).toBe('rejected');
  });
});

describe('checks that need only the parameters run in validation', () => {
  const chaos = new Chaos({ seed: 1, progress: false });
  const problems = (spec: unknown) => {
    try {
      chaos.validate(spec as never);
    } catch (e) {
      expect(e).toBeInstanceOf(ChaosSpecError);
      return (e as ChaosSpecError).message;
    }
    return 'accepted';
  };

  it('network-partition: action "reject" with direction "ingress"', () => {
    const m = problems({ kind: 'network-partition', target: 'x', action: 'reject', direction: 'ingress' });
    expect(m).toMatch(/direction is "ingress"; expected "egress" or "both" with action "reject"/);
  });

  it('network-partition: action "reject" with protocol "udp"', () => {
    const m = problems({ kind: 'network-partition', target: 'x', action: 'reject', protocol: 'udp' });
    expect(m).toMatch(/protocol is "udp"; expected "tcp" or none with action "reject"/);
  });

  it('network-partition: the valid combinations pass', () => {
    expect(problems({ kind: 'network-partition', target: 'x', action: 'reject', direction: 'egress', protocol: 'tcp' })).toBe('accepted');
    expect(problems({ kind: 'network-partition', target: 'x', action: 'drop', direction: 'ingress', protocol: 'udp' })).toBe('accepted');
  });

  it('crash-on-syscall: a host whose syscall numbers are not x86_64', () => {
    const arch = Object.getOwnPropertyDescriptor(process, 'arch')!;
    Object.defineProperty(process, 'arch', { ...arch, value: 'arm64' });
    try {
      expect(problems({ kind: 'crash-on-syscall', target: 'x', syscall: 'write' })).toMatch(/syscall is "write"; expected an x86_64 host/);
    } finally {
      Object.defineProperty(process, 'arch', arch);
    }
    expect(problems({ kind: 'crash-on-syscall', target: 'x', syscall: 'write' })).toBe('accepted');
  });

  it('an experiment with such a fault is refused before its baseline starts', async () => {
    const t0 = performance.now();
    const opts = options({
      baselineMs: 2000,
      faults: [{ kind: 'network-partition', target: 'x', action: 'reject', direction: 'ingress' } as Spec],
    });
    await expect(runExperiment(opts, { injector: chaos as unknown as Injector<Spec>, seed: 1 })).rejects.toThrow(/direction is "ingress"/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('a serial schedule', () => {
  it('times each step from the revert of the one before: a slow inject does not make two steps overlap', async () => {
    const rec = new Recorder();
    const schedule = new FaultSchedule<Spec>(
      [
        { atMs: 0, durationMs: 100, fault: { kind: 'slow', injectMs: 300 } },
        { atMs: 50, durationMs: 100, fault: { kind: 'quick' } },
      ],
      1,
      injector(),
      rec,
      new AbortController(),
      () => undefined,
    );
    await schedule.start('serial');
    await new Promise((r) => setTimeout(r, 700));
    await schedule.revertAll();
    const [a, b] = schedule.records as [FaultRecord, FaultRecord];
    expect(schedule.error).toBeUndefined();
    // The first took 300 ms to be in force and stayed 100; timed from the start, the second
    // would have been injected at 150 ms, while the first was still in force.
    expect(a.applyMs!).toBeGreaterThanOrEqual(295);
    expect(a.revertedAtMs! - a.injectedAtMs!).toBeGreaterThanOrEqual(95);
    const bStart = b.injectedAtMs! - b.applyMs!;
    expect(bStart - a.revertedAtMs!).toBeGreaterThanOrEqual(45);
    expect(b.revertedAtMs! - b.injectedAtMs!).toBeGreaterThanOrEqual(95);
  });
});
