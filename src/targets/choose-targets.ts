// Which of a fault's candidate targets get it, as Chaos Mesh's selector modes
// name the choice. Pure: the same seed and the same candidates give the same
// choice, so a failing run replays on the same containers.
import { deriveSeed } from '../contracts/seed.js';

export const TARGET_MODES = ['one', 'all', 'fixed', 'fixed-percent', 'random-max-percent'] as const;
export type TargetMode = (typeof TARGET_MODES)[number];

/**
 * How many of `n` candidates a mode chooses. `random-max-percent` draws the
 * percentage in [0, value] with the seed, as Chaos Mesh does, but chooses at
 * least one: a fault on no target would silently do nothing.
 */
export function chosenCount(n: number, mode: TargetMode, value: number | undefined, seed: number): number {
  switch (mode) {
    case 'all':
      return n;
    case 'one':
      return Math.min(1, n);
    case 'fixed':
      return Math.min(n, value as number);
    case 'fixed-percent':
      return Math.floor((n * (value as number)) / 100);
    case 'random-max-percent': {
      const max = value as number;
      const drawn = deriveSeed(seed, 'max-percent') % (Math.floor(max) + 1);
      return Math.max(1, Math.floor((n * drawn) / 100));
    }
  }
}

/**
 * The indexes of the chosen candidates, in the order they are applied (a
 * seeded permutation; a gradual rollout takes its prefixes). `all` keeps the
 * given order.
 */
export function chooseTargets(n: number, mode: TargetMode, value: number | undefined, seed: number): number[] {
  const order = [...Array(n).keys()];
  if (mode === 'all') return order;
  for (let i = n - 1; i > 0; i--) {
    const j = deriveSeed(seed, 'choose', i) % (i + 1);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order.slice(0, chosenCount(n, mode, value, seed));
}
