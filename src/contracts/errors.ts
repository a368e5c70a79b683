// Errors a user sees. Each names the field, the value given and what was expected.
import type { z } from 'zod';
import { redact } from './redact.js';

export interface SpecProblem {
  /** Dotted path of the field, e.g. "percent" or "peer". */
  field: string;
  /** What was given (undefined when missing). */
  value: unknown;
  /** What is expected. */
  expected: string;
}

/** A fault spec or option that is wrong; nothing was applied. */
export class ChaosSpecError extends Error {
  override name = 'ChaosSpecError';
  constructor(
    readonly where: string,
    readonly problems: SpecProblem[],
  ) {
    super(
      `${where}: ` +
        problems.map((p) => `${p.field} is ${describeValue(p.value)}; expected ${p.expected}`).join('; ') +
        '. Nothing was applied.',
    );
  }
}

/** The machine lacks something the fault needs (root, cgroup v2, BTF, Docker...). */
export class PreflightError extends Error {
  override name = 'PreflightError';
}

export function describeValue(v: unknown): string {
  return redact(describeRaw(v));
}

function describeRaw(v: unknown): string {
  if (v === undefined) return 'missing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'function') return 'a function';
  if (v && typeof v === 'object') {
    if (typeof (v as { getId?: unknown }).getId === 'function') return 'a container object';
    try {
      const s = JSON.stringify(v);
      return s.length > 80 ? `${s.slice(0, 77)}...` : s;
    } catch {
      return 'an object';
    }
  }
  return String(v);
}

/** Turns zod issues into problems that read "percent is 150; expected ...". */
export function problemsFromZod(error: z.core.$ZodError, input: unknown): SpecProblem[] {
  const out: SpecProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        out.push({
          field: [...issue.path, key].join('.'),
          value: (valueAt(input, issue.path) as Record<string, unknown> | undefined)?.[key],
          expected: 'no such field (check its spelling in the README)',
        });
      }
      continue;
    }
    let expected = issue.message;
    if (issue.code === 'invalid_value') expected = `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    expected = expected.replace(/^Invalid (input|option): expected /, '');
    out.push({ field: issue.path.join('.') || '(spec)', value: valueAt(input, issue.path), expected });
  }
  return out;
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let v: unknown = input;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}
