// Faults need root, cgroup v2, BTF, the addon and Docker: the preflight runs
// once, and a test that injects on a machine without them (or a kind its kernel
// lacks) is skipped with the reason and the fix (a PreflightError outside a test).
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

  /** With a kind: also skipped when this kernel lacks what that kind needs (the others still run). */
  async require(test: SkippableTest | undefined, kind?: string): Promise<void> {
    this.result ??= preflight();
    const result = await this.result;
    const kernelLacks = kind ? result.kindsUnavailable?.[kind] : undefined;
    if (result.ok && !kernelLacks) return;
    const reason = result.ok
      ? `vitest-chaos cannot inject ${kind} on this machine: ${kernelLacks}. Fix: ${result.kernel?.fix ?? 'use Linux 6.6 or later'}`
      : `vitest-chaos cannot inject faults on this machine:\n${formatPreflight(result)}`;
    if (test) test.context.skip(reason);
    throw new PreflightError(reason);
  }
}
