// Checks a fault spec without touching anything: the shared fields (target or
// targets, mode and value, seed) and the kind's own schema, every problem named
// at once.
import { z } from 'zod';
import { ChaosSpecError, problemsFromZod, type SpecProblem } from '../contracts/errors.js';
import { chosenCount, TARGET_MODES, type TargetMode } from '../targets/choose-targets.js';
import { CONTAINER_REF, type ContainerRef } from '../targets/resolve-target.js';
import { faultKinds, type FaultSpec } from './kinds.js';

const SEED = 'an integer from 0 to 2147483647';
const commonSchema = z.object({
  seed: z.number({ error: SEED }).int({ error: SEED }).min(0, { error: SEED }).max(0x7fffffff, { error: SEED }).optional(),
});

export interface ValidSpec {
  kind: string;
  /** The kind's parameters as its schema parsed them (defaults filled in). */
  params: Record<string, unknown>;
  /** The candidate targets, in the order given (one for a single target). */
  targets: ContainerRef[];
  /** How the candidates are chosen (default 'all'). */
  mode: TargetMode;
  /** The count ('fixed') or percent (the percent modes). */
  value?: number;
}

const TARGET = 'a started container (StartedTestContainer) or a container id or name (letters, digits, _ . -)';
const isRef = (t: unknown): t is ContainerRef =>
  (typeof t === 'string' && CONTAINER_REF.test(t)) || typeof (t as { getId?: unknown } | null)?.getId === 'function';
const idOf = (t: ContainerRef): string => (typeof t === 'string' ? t : t.getId());

/** The kind and its parsed parameters, or a ChaosSpecError naming every wrong field. */
export function validateSpec(spec: FaultSpec): ValidSpec {
  if (spec === null || typeof spec !== 'object') {
    throw new ChaosSpecError('chaos.inject', [{ field: 'spec', value: spec, expected: 'an object { kind, target, ... }' }]);
  }
  const { kind, target, seed, mode: givenMode, value, ...rest } = spec as unknown as Record<string, unknown>;
  let mode = givenMode;
  // network-partition's action was named `mode` before `mode` chose among targets.
  if (kind === 'network-partition' && (mode === 'drop' || mode === 'reject') && rest.action === undefined) {
    rest.action = mode;
    mode = undefined;
  }
  // connection-limit's action, as its issue named it: `mode` already chooses among targets.
  if (kind === 'connection-limit' && (mode === 'reject' || mode === 'hang') && rest.action === undefined) {
    rest.action = mode;
    mode = undefined;
  }
  const where = `chaos.inject(${typeof kind === 'string' ? kind : '?'})`;
  const impl = typeof kind === 'string' ? faultKinds.get(kind) : undefined;
  const problems: SpecProblem[] = [];
  if (!impl) {
    problems.push({ field: 'kind', value: kind, expected: `one of ${[...faultKinds.keys()].map((k) => `"${k}"`).join(', ')}` });
  }
  const targets = targetProblems(target, problems);
  const choice = choiceProblems(mode, value, targets.length, problems);
  const common = commonSchema.safeParse({ seed }, { reportInput: true });
  if (!common.success) problems.push(...problemsFromZod(common.error, { seed }));
  let params: Record<string, unknown> = {};
  if (impl) {
    const parsed = impl.schema.safeParse(rest, { reportInput: true });
    if (parsed.success) params = parsed.data as Record<string, unknown>;
    else problems.push(...problemsFromZod(parsed.error, rest));
  }
  if (problems.length) throw new ChaosSpecError(where, problems);
  return { kind: kind as string, params, targets, ...choice };
}

function targetProblems(target: unknown, problems: SpecProblem[]): ContainerRef[] {
  if (!Array.isArray(target)) {
    if (isRef(target)) return [target];
    problems.push({ field: 'target', value: target, expected: `${TARGET}, or an array of them` });
    return [];
  }
  if (target.length === 0) {
    problems.push({ field: 'target', value: target, expected: 'at least one container' });
    return [];
  }
  const seen = new Map<string, number>();
  target.forEach((t, i) => {
    if (!isRef(t)) {
      problems.push({ field: `target.${i}`, value: t, expected: TARGET });
      return;
    }
    const prev = seen.get(idOf(t));
    if (prev !== undefined)
      problems.push({ field: `target.${i}`, value: idOf(t), expected: `a container not already listed (it is target.${prev})` });
    else seen.set(idOf(t), i);
  });
  return target.filter(isRef);
}

function choiceProblems(mode: unknown, value: unknown, n: number, problems: SpecProblem[]): { mode: TargetMode; value?: number } {
  const m = (mode ?? 'all') as TargetMode;
  if (!TARGET_MODES.includes(m)) {
    problems.push({ field: 'mode', value: mode, expected: `one of ${TARGET_MODES.map((x) => `"${x}"`).join(', ')}` });
    return { mode: 'all' };
  }
  if (m === 'one' || m === 'all') {
    if (value !== undefined) problems.push({ field: 'value', value, expected: `no value with mode "${m}"` });
    return { mode: m };
  }
  if (m === 'fixed') {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      problems.push({ field: 'value', value, expected: 'with mode "fixed", an integer count of targets >= 1' });
      return { mode: m };
    }
    return { mode: m, value };
  }
  if (typeof value !== 'number' || !(value > 0 && value <= 100)) {
    problems.push({ field: 'value', value, expected: `with mode "${m}", a percent greater than 0 and at most 100` });
    return { mode: m };
  }
  if (m === 'fixed-percent' && n > 0 && chosenCount(n, m, value, 0) < 1) {
    problems.push({
      field: 'value',
      value,
      expected: `a percent that chooses at least one of the ${n} target(s) (>= ${Math.ceil(100 / n)}); ${value}% of ${n} rounds down to none`,
    });
  }
  return { mode: m, value };
}
