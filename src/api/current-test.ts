// The running test, from the user's own Vitest: a second copy of @vitest/runner
// (a nested install) has no current test, and the per-test revert silently stops.
import * as vitest from 'vitest';
import type { RunnerTestCase } from 'vitest';

type GetCurrentTest = () => RunnerTestCase | undefined;

// Vitest >= 4.1 has TestRunner.getCurrentTest() and warns on every import of
// 'vitest/suite'; 3.2 and 4.0 have only 'vitest/suite'.
const fromRunner = (vitest as { TestRunner?: { getCurrentTest?: GetCurrentTest } }).TestRunner?.getCurrentTest;
const get: GetCurrentTest = fromRunner
  ? () => fromRunner()
  : ((await import('vitest/suite')) as { getCurrentTest: GetCurrentTest }).getCurrentTest;

/** The test running now in this worker, or undefined outside a test (beforeAll, module scope). */
export function currentTest(): RunnerTestCase | undefined {
  return get();
}
