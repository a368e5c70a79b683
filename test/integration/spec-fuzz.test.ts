// Property-based spec fuzzing (issue 14), for every kind in src/faults/kinds.ts.
// fast-check mutates a valid spec of the kind (junk values, boundaries, extra
// and missing fields, unknown kinds, targets gone or not ours); each generated
// spec is given to chaos.inject and either
//  - is refused with a ChaosSpecError whose every problem names a field, the
//    value and what is expected, one of them a field the mutation touched, and
//    nothing applied (bpf links, slot maps, journal, cgroup values, processes
//    unchanged); or
//  - is valid: applied and reverted (up to FUZZ_APPLY per kind; kinds that
//    cannot be undone are planned only), leaving the full snapshot (qdiscs,
//    Docker state, files too) as it was.
// A fixed seed and a few hundred cases per kind here; `npm run soak` runs more
// (VITEST_CHAOS_FUZZ_RUNS, VITEST_CHAOS_FUZZ_APPLY, VITEST_CHAOS_FUZZ_SEED).
import Docker from 'dockerode';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChaosSpecError, createChaos } from 'vitest-chaos';
import { describeValue } from '../../src/contracts/errors.js';
import { FAULT_KINDS } from '../../src/faults/kinds.js';
import { IMAGES, startHttpServer, stopAll, testLabels } from '../helpers/containers.js';
import { leftovers, quickLeftovers } from '../helpers/leftovers.js';
import { describeCase, fieldsOf, type FuzzCase, fuzzCases, type FuzzTargets } from '../helpers/spec-fuzz.js';

const RUNS = Number(process.env.VITEST_CHAOS_FUZZ_RUNS ?? 300);
const APPLY = Number(process.env.VITEST_CHAOS_FUZZ_APPLY ?? 2);
const SEED = Number(process.env.VITEST_CHAOS_FUZZ_SEED ?? 14);
/** Kinds that cannot be undone: a valid spec is planned (resolved, chosen), not applied. */
const NOT_APPLIED = new Set(['process-kill', 'container-restart']);

const MiB = 1 << 20;
/**
 * A valid spec is applied only within what this shared machine can take (a
 * generated 4 GiB disk-fill is valid, and planned only); the bound per field.
 */
const SAFE: Record<string, (p: Record<string, unknown>) => boolean> = {
  'memory-stress': (p) => (p.bytes as number) <= 64 * MiB && p.rateBytesPerSec === undefined,
  'disk-fill': (p) => (p.bytes as number) <= 16 * MiB,
  'cpu-stress': (p) => (p.workers as number) <= 2,
  'memory-limit': (p) => (p.bytes as number) >= 256 * MiB,
  'container-stop': (p) => p.timeoutSec === 0,
  'container-restart': () => false,
  'process-kill': () => false,
  // a generated syscall (0 is read) could kill the target's server
  'crash-on-syscall': (p) => p.syscall === 'mkdirat',
};

const JOURNAL = mkdtempSync(join(tmpdir(), 'vc-spec-fuzz-'));
process.env.VITEST_CHAOS_JOURNAL_DIR = JOURNAL;
const chaos = createChaos({ seed: SEED, progress: false });

describe('generated specs', () => {
  const docker = new Docker();
  let t: FuzzTargets;
  let target: StartedTestContainer;
  let peer: StartedTestContainer;
  let stranger: Docker.Container;
  const tally: Record<string, Record<string, number>> = {};

  beforeAll(async () => {
    [target, peer] = await Promise.all([startHttpServer('spec-fuzz-target'), startHttpServer('spec-fuzz-peer')]);
    stranger = await docker.createContainer({ Image: IMAGES.client, Labels: testLabels('spec-fuzz-stranger') });
    await stranger.start();
    const gone = await docker.createContainer({ Image: IMAGES.client, Labels: testLabels('spec-fuzz-gone') });
    await gone.remove({ force: true });
    t = { target, peer, goneId: gone.id, strangerId: stranger.id };
  });
  afterAll(async () => {
    await chaos.revertAll();
    await stranger?.remove({ force: true });
    await stopAll(target, peer);
    rmSync(JOURNAL, { recursive: true, force: true });
    console.info(
      `spec fuzz (seed ${SEED}, ${RUNS} cases per kind): ${Object.entries(tally)
        .map(
          ([k, c]) =>
            `${k} ${Object.entries(c)
              .map(([o, n]) => `${o} ${n}`)
              .join(' ')}`,
        )
        .join('; ')}`,
    );
  });

  it.each(FAULT_KINDS.map((k) => k.kind))(
    '%s: each spec is refused naming field, value and expected with nothing applied, or applies and reverts leaving nothing',
    async (kind) => {
      const count = (tally[kind] = { refused: 0, applied: 0, planned: 0, 'refused at apply': 0 });
      const ids = [target.getId(), peer.getId(), stranger.id];
      const quick = () => quickLeftovers(JOURNAL, ...ids);
      const clean = quick();
      const full = await leftovers(JOURNAL, target, peer);
      let applies = 0;

      const checkRefusal = (err: unknown, c: FuzzCase) => {
        expect(err, describeCase(c)).toBeInstanceOf(ChaosSpecError);
        const e = err as ChaosSpecError;
        expect(e.problems.length, describeCase(c)).toBeGreaterThan(0);
        for (const p of e.problems) {
          expect(typeof p.field === 'string' && p.field.length > 0, `${describeCase(c)}: ${e.message}`).toBe(true);
          expect(typeof p.expected === 'string' && p.expected.length > 3, `${describeCase(c)}: ${e.message}`).toBe(true);
          expect(e.message).toContain(`${p.field} is ${describeValue(p.value)}; expected ${p.expected}`);
        }
        // A problem's field is a dotted path under a touched field (a touched key may hold a dot itself: "qr."),
        // or a rule across fields names the touched one in what it expects ("exactly one of afterBytes and afterMs").
        const named = e.problems.map((p) => p.field);
        const touched = [...c.touched];
        const fields = fieldsOf(kind);
        const names = (p: { field: string; expected: string }) =>
          p.field === '(spec)' ||
          touched.some((t) => p.field === t || p.field.startsWith(`${t}.`) || (fields.includes(t) && p.expected.includes(t)));
        expect(
          e.problems.some(names) || c.touched.size === 0,
          `${describeCase(c)}: the error names ${named.join(', ')}, not one of the touched fields ${[...c.touched].join(', ')}: ${e.message}`,
        ).toBe(true);
        expect(e.message).toMatch(/Nothing was applied\.$/);
      };

      const property = fc.asyncProperty(fuzzCases(kind, t), async (c) => {
        let valid = true;
        try {
          chaos.validate(c.spec as never);
        } catch (err) {
          valid = false;
          checkRefusal(err, c);
        }
        const safe = valid && (SAFE[kind]?.(chaos.validate(c.spec as never).params) ?? true);
        if (!valid || !safe || applies >= APPLY) {
          // A refused spec is refused by inject too; a valid one beyond the budget is planned only.
          const err = await (valid ? chaos.plan(c.spec as never) : chaos.inject(c.spec as never)).then(
            () => null,
            (e: unknown) => e,
          );
          if (err) {
            checkRefusal(err, c);
            count[valid ? 'refused at apply' : 'refused']!++;
          } else count.planned!++;
          expect(chaos.activeFaults()).toEqual([]);
          expect(quick(), describeCase(c)).toEqual(clean);
          return;
        }
        applies++;
        const fault = await chaos.inject(c.spec as never).catch((e: unknown) => {
          checkRefusal(e, c); // a check that needs the target (e.g. a limit below the memory in use)
          return null;
        });
        if (fault) {
          count.applied!++;
          // the snapshot sees the fault (else it could not see one left behind)
          expect(await leftovers(JOURNAL, target, peer), describeCase(c)).not.toEqual(full);
          await fault.revert();
          expect(fault.active).toBe(false);
        } else count['refused at apply']!++;
        expect(chaos.activeFaults()).toEqual([]);
        expect(await leftovers(JOURNAL, target, peer), describeCase(c)).toEqual(full);
      });
      await fc.assert(property, { seed: SEED, numRuns: RUNS, endOnFailure: true });
      expect(await leftovers(JOURNAL, target, peer)).toEqual(full);
      expect(count.refused).toBeGreaterThan(RUNS / 2);
      if (!NOT_APPLIED.has(kind)) expect(count.applied).toBeGreaterThan(0);
    },
  );
});
