/// <reference types="vitest/config" />
// The Vite plugin 'vitest:chaos': runs the preflight once in the main process,
// hands options and its result to every worker (provide/inject), and adds a
// setup file that configures `chaos` and reverts whatever a file left active.
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vite';
import { formatResourceSupport, preflight, type PreflightResult } from './preflight.js';
import { randomSeed } from '../contracts/seed.js';

export interface ChaosPluginOptions {
  /**
   * Containers (ids or names) that may be targeted although Testcontainers did
   * not start them. Default: none.
   */
  allowTargets?: string[];
  /**
   * Seed of the run: every fault's random choices derive from it, the test's
   * name and the fault's position. Default: random, printed at start so a
   * failing run can be replayed with `VITEST_CHAOS_SEED=<seed>`.
   */
  seed?: number;
}

export interface ProvidedChaos {
  allowTargets: string[];
  seed: number;
  preflight: PreflightResult;
}

declare module 'vitest' {
  export interface ProvidedContext {
    vitestChaos: ProvidedChaos;
  }
}

const setupFile = fileURLToPath(new URL(`./setup-file.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));

export function chaos(options: ChaosPluginOptions = {}): Plugin {
  const envSeed = process.env.VITEST_CHAOS_SEED;
  const seed = options.seed ?? (envSeed ? Number(envSeed) : randomSeed());
  if (!Number.isInteger(seed) || seed < 0 || seed > 0x7fffffff) {
    throw new Error(`vitest-chaos plugin: seed is ${String(options.seed ?? envSeed)}; expected an integer from 0 to 2147483647`);
  }
  return {
    name: 'vitest:chaos',
    config() {
      return { test: { setupFiles: [setupFile] } };
    },
    async configureVitest({ project, vitest }) {
      const result = await preflight();
      const log = vitest.logger;
      log.log(`vitest-chaos: seed ${seed} (replay with VITEST_CHAOS_SEED=${seed})`);
      if (result.resources) log.log(`vitest-chaos: ${formatResourceSupport(result.resources)}`);
      if (!result.ok) {
        log.warn(
          `vitest-chaos: tests that inject faults will be skipped:\n` +
            result.problems.map((p) => `  - ${p.requirement}: ${p.detail}\n    fix: ${p.fix}`).join('\n'),
        );
      }
      if (result.kernel) log.warn(`vitest-chaos: tests that inject these kinds will be skipped: ${result.kernel.detail}\n    fix: ${result.kernel.fix}`);
      project.provide('vitestChaos', { allowTargets: options.allowTargets ?? [], seed, preflight: result });
    },
  };
}
