// Seeds per test: the n-th fault (or, with a tag, n-th experiment) of a test
// gets a seed from the run's seed, the test's file and name and that
// position, so a test replays alike whatever ran beside it.
import { deriveSeed } from '../contracts/seed.js';

interface TestLike {
  name: string;
  file?: { filepath?: string };
  suite?: unknown;
}

export class TestSeeds {
  private readonly counts = new Map<string, number>();

  constructor(private readonly runSeed: number) {}

  next(test: TestLike | undefined, tag?: string): number {
    const testKey = test ? `${test.file?.filepath ?? ''}::${fullName(test)}` : '(outside a test)';
    const counter = tag ? `${testKey}#${tag}` : testKey;
    const n = (this.counts.get(counter) ?? 0) + 1;
    this.counts.set(counter, n);
    return tag ? deriveSeed(this.runSeed, testKey, tag, n) : deriveSeed(this.runSeed, testKey, n);
  }
}

function fullName(task: { name: string; suite?: unknown }): string {
  const names = [task.name];
  let s = task.suite as { name: string; suite?: unknown } | undefined;
  while (s) {
    if (s.name) names.unshift(s.name);
    s = s.suite as typeof s;
  }
  return names.join(' > ');
}
