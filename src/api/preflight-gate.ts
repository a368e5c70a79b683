// Faults need root, cgroup v2, BTF, the addon and Docker: the preflight runs
// once, and a test that injects on a machine without them is skipped with the
// reason and the fix (a PreflightError outside a test).
import { PreflightError } from '../contracts/errors.js';
import { formatPreflight, preflight, type PreflightResult } from './preflight.js';

interface SkippableTest {
  context: { skip(note?: string): never | void };
}

export class PreflightGate {
  private result?: Promise<PreflightResult>;

  constructor(known?: PreflightResult) {
    if (known) this.result = Promise.resolve(known);
  }

  async require(test: SkippableTest | undefined): Promise<void> {
    this.result ??= preflight();
    const result = await this.result;
    if (result.ok) return;
    const reason = `vitest-chaos cannot inject faults on this machine:\n${formatPreflight(result)}`;
    if (test) test.context.skip(reason);
    throw new PreflightError(reason);
  }
}
