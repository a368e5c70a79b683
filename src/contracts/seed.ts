// Seeds: one per run (reported), one per fault derived from it, the test's
// name and the fault's position in the test, so a failing test replays with
// the same choices whatever else ran in parallel.

/** FNV-1a over the parts, folded to a positive 31-bit integer. */
export function deriveSeed(runSeed: number, ...parts: (string | number)[]): number {
  let h = 0x811c9dc5 ^ (runSeed >>> 0);
  for (const part of parts) {
    const s = `${String(part)}\u0000`;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  }
  return (h >>> 0) & 0x7fffffff || 1;
}

export function randomSeed(): number {
  return (Math.floor(Math.random() * 0x7fffffff) || 1) >>> 0;
}
