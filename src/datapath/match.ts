// Which connections, requests and lookups a data-path fault hits: a seeded
// coin for the share, and globs for host and DNS names.
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

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
  const res = patterns.map((p) => new RegExp(`^${p.replace(/\.$/, '').split('*').map(escapeRegExp).join('.*')}$`, 'i'));
  return (name) => {
    const n = name.replace(/\.$/, '');
    return res.some((r) => r.test(n));
  };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
