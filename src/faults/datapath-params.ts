// Parameters the data-path faults share (reset, timeout, slow-close, http, dns).
import { z } from 'zod';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';

const MAX_MS = 600_000;

/** Milliseconds, 0 to 600000 (10 minutes). */
export const millis = (what = `a number of milliseconds from 0 to ${MAX_MS}`) =>
  z.number({ error: what }).min(0, { error: what }).max(MAX_MS, { error: what });

/** A byte count, 0 to 2^31-1. */
export const byteCount = (what = 'an integer number of bytes from 0 to 2147483647') =>
  z.number({ error: what }).int({ error: what }).min(0, { error: what }).max(0x7fffffff, { error: what });

/** Share of connections / requests / lookups the fault hits, in percent. */
export const percentOf = (what: string) =>
  z
    .number({ error: `a number from 0 to 100 (the share of ${what} hit)` })
    .min(0, { error: `a number from 0 to 100 (the share of ${what} hit)` })
    .max(100, { error: `a number from 0 to 100 (the share of ${what} hit)` })
    .default(100);

/** A seeded coin: true for `percent` % of calls, the same sequence for the same seed. */
export function seededChance(seed: number, percent: number): () => boolean {
  if (percent >= 100) return () => true;
  const rng = xoroshiro128plus(seed);
  return () => uniformFloat64(rng) * 100 < percent;
}

/**
 * Glob for DNS and host names: '*' stands for any run of characters (dots
 * too), matching is case-insensitive and ignores a trailing dot.
 */
export function nameMatcher(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map(
    (p) => new RegExp(`^${p.replace(/\.$/, '').split('*').map(escapeRegExp).join('.*')}$`, 'i'),
  );
  return (name) => {
    const n = name.replace(/\.$/, '');
    return res.some((r) => r.test(n));
  };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A host or DNS name pattern: letters, digits, '-', '_', '.', and '*' wildcards. */
export const namePattern = z
  .string({ error: 'a name or glob pattern such as "backend" or "*.svc.local"' })
  .regex(/^[A-Za-z0-9_*.-]{1,253}$/, { error: 'a name or glob pattern such as "backend" or "*.svc.local"' });
