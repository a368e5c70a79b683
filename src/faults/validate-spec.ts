// Checks a fault spec without touching anything: the shared fields and the
// kind's own schema, every problem named at once.
import { z } from 'zod';
import { ChaosSpecError, problemsFromZod, type SpecProblem } from '../contracts/errors.js';
import { faultKinds, type FaultSpec } from './kinds.js';

const SEED = 'an integer from 0 to 2147483647';
const commonSchema = z.object({
  seed: z.number({ error: SEED }).int({ error: SEED }).min(0, { error: SEED }).max(0x7fffffff, { error: SEED }).optional(),
});

export interface ValidSpec {
  kind: string;
  /** The kind's parameters as its schema parsed them (defaults filled in). */
  params: Record<string, unknown>;
}

/** The kind and its parsed parameters, or a ChaosSpecError naming every wrong field. */
export function validateSpec(spec: FaultSpec): ValidSpec {
  if (spec === null || typeof spec !== 'object') {
    throw new ChaosSpecError('chaos.inject', [{ field: 'spec', value: spec, expected: 'an object { kind, target, ... }' }]);
  }
  const { kind, target, seed, ...rest } = spec as unknown as Record<string, unknown>;
  const where = `chaos.inject(${typeof kind === 'string' ? kind : '?'})`;
  const impl = typeof kind === 'string' ? faultKinds.get(kind) : undefined;
  const problems: SpecProblem[] = [];
  if (!impl) {
    problems.push({ field: 'kind', value: kind, expected: `one of ${[...faultKinds.keys()].map((k) => `"${k}"`).join(', ')}` });
  }
  if (typeof target !== 'string' && typeof (target as { getId?: unknown } | null)?.getId !== 'function') {
    problems.push({ field: 'target', value: target, expected: 'a started container (StartedTestContainer) or a container id' });
  }
  const common = commonSchema.safeParse({ seed }, { reportInput: true });
  if (!common.success) problems.push(...problemsFromZod(common.error, { seed }));
  let params: Record<string, unknown> = {};
  if (impl) {
    const parsed = impl.schema.safeParse(rest, { reportInput: true });
    if (parsed.success) params = parsed.data as Record<string, unknown>;
    else problems.push(...problemsFromZod(parsed.error, rest));
  }
  if (problems.length) throw new ChaosSpecError(where, problems);
  return { kind: kind as string, params };
}
