export function median(xs: number[]): number {
  return quantile(xs, 0.5);
}

export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) throw new Error('quantile of nothing');
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (pos - lo);
}

/** Bounds that a Binomial(n, p) count falls outside with probability ~1e-5 (4.4 sigma). */
export function binomialBounds(n: number, p: number, sigmas = 4.4): [number, number] {
  const sd = Math.sqrt(n * p * (1 - p));
  return [n * p - sigmas * sd, n * p + sigmas * sd];
}
