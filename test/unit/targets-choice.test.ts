// The choice among a fault's targets and its validation (pure: no Docker, no kernel).
import { describe, expect, it } from 'vitest';
import { Chaos } from '../../src/api/chaos.js';
import { chooseTargets, chosenCount } from '../../src/targets/choose-targets.js';

describe("choosing targets with Chaos Mesh's modes", () => {
  it('chooses as many as each mode says, each at most once', () => {
    expect(chooseTargets(4, 'all', undefined, 1)).toEqual([0, 1, 2, 3]);
    for (let seed = 1; seed < 200; seed++) {
      expect(chooseTargets(3, 'one', undefined, seed)).toHaveLength(1);
      expect(chooseTargets(4, 'fixed-percent', 50, seed)).toHaveLength(2);
      expect(chooseTargets(5, 'fixed', 3, seed)).toHaveLength(3);
      const r = chooseTargets(10, 'random-max-percent', 40, seed);
      expect(r.length).toBeGreaterThanOrEqual(1);
      expect(r.length).toBeLessThanOrEqual(4);
      expect(new Set(chooseTargets(6, 'fixed', 6, seed)).size).toBe(6);
    }
    expect(chooseTargets(2, 'fixed', 5, 1)).toHaveLength(2); // clamped, as Chaos Mesh does
  });
  it('the same seed gives the same choice; seeds spread the choice over every target', () => {
    expect(chooseTargets(5, 'fixed', 2, 77)).toEqual(chooseTargets(5, 'fixed', 2, 77));
    const counts = [0, 0, 0];
    for (let seed = 1; seed <= 3000; seed++) counts[chooseTargets(3, 'one', undefined, seed)[0]!]!++;
    for (const c of counts) expect(c).toBeGreaterThan(800); // about 1000 each
  });
  it('random-max-percent draws up to the percent', () => {
    const sizes = new Set<number>();
    for (let seed = 1; seed < 300; seed++) sizes.add(chosenCount(10, 'random-max-percent', 50, seed));
    expect([...sizes].sort()).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('validating target, mode and value', () => {
  const c = new Chaos({ seed: 1, preflight: { ok: true, problems: [] } });
  const refused = (spec: object) => {
    try {
      c.validate(spec as never);
    } catch (e) {
      return (e as Error).message;
    }
    return 'accepted';
  };
  it('refuses bad modes and values, naming field, value and expectation', () => {
    expect(refused({ kind: 'network-loss', target: ['a', 'b'], mode: 'some' })).toMatch(
      /mode is "some"; expected one of "one", "all", "fixed"/,
    );
    expect(refused({ kind: 'network-loss', target: ['a', 'b'], mode: 'fixed', value: 1.5 })).toMatch(
      /value is 1.5; expected with mode "fixed", an integer count/,
    );
    expect(refused({ kind: 'network-loss', target: ['a', 'b'], mode: 'fixed-percent' })).toMatch(
      /value is missing; expected with mode "fixed-percent", a percent greater than 0 and at most 100/,
    );
    expect(refused({ kind: 'network-loss', target: ['a', 'b', 'c'], mode: 'fixed-percent', value: 20 })).toMatch(
      /20% of 3 rounds down to none/,
    );
    expect(refused({ kind: 'network-loss', target: ['a'], mode: 'one', value: 1 })).toMatch(
      /value is 1; expected no value with mode "one"/,
    );
    expect(refused({ kind: 'network-loss', target: [] })).toMatch(/target is \[\]; expected at least one container/);
    expect(refused({ kind: 'network-loss', target: ['a', 'a'] })).toMatch(
      /target.1 is "a"; expected a container not already listed \(it is target.0\)/,
    );
    expect(refused({ kind: 'network-loss', target: ['a', 3] })).toMatch(/target.1 is 3; expected a started container/);
    expect(refused({ kind: 'network-loss', target: ['a', 'b'], mode: 'random-max-percent', value: 50 })).toBe('accepted');
  });
  it("still reads network-partition's old `mode: 'reject'` as its action", () => {
    expect(c.validate({ kind: 'network-partition', target: 'x', mode: 'reject' } as never)).toMatchObject({
      mode: 'all',
      params: { action: 'reject' },
    });
    expect(c.validate({ kind: 'network-partition', target: ['x', 'y'], mode: 'one', action: 'reject' })).toMatchObject({
      mode: 'one',
      params: { action: 'reject' },
    });
  });
});
