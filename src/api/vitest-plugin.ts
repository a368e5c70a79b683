/// <reference types="vitest/config" />
// The Vite plugin 'vitest:chaos': runs the preflight once in the main process,
// hands options and its result to every worker (provide/inject), and adds a
// setup file that configures `chaos` and reverts whatever a file left active.
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vite';
import { startMetricsServer } from '../report/metrics-channel.js';
import { removeRunRate } from './injection-rate.js';
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
  /**
   * Serve the run's chaos metrics (chaos_experiments_total, ...) in Prometheus
   * format at http://127.0.0.1:PORT/metrics, aggregated over every worker, while
   * Vitest runs. port 0 picks a free one (printed). Default: not served.
   */
  metrics?: { port: number };
  /**
   * Validate specs and choose targets as for real, apply nothing; faults are
   * reported dry and experiments end with the verdict 'dry-run'.
   * Default: true when VITEST_CHAOS_DRY_RUN=1, else false.
   */
  dryRun?: boolean;
  /** Most targets one fault, or one experiment's faults together, may change. Default: no limit. */
  maxTargets?: number;
  /** Most injections in any 60 s of the run, all workers together. Default: no limit. */
  maxInjectionsPerMinute?: number;
}

export interface ProvidedChaos {
  allowTargets: string[];
  seed: number;
  preflight: PreflightResult;
  /** Unix socket the workers send their chaos events to, when metrics are served. */
  metricsSocket?: string;
  dryRun: boolean;
  maxTargets?: number;
  maxInjectionsPerMinute?: number;
  /** The Vitest main process: the run that injection limits count towards. */
  runPid: number;
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
  const port = options.metrics?.port;
  if (options.metrics !== undefined && !(typeof port === 'number' && Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new Error(`vitest-chaos plugin: metrics.port is ${String(port)}; expected an integer from 0 to 65535`);
  }
  let metricsServer: Promise<Awaited<ReturnType<typeof startMetricsServer>>> | undefined;
  for (const name of ['maxTargets', 'maxInjectionsPerMinute'] as const) {
    const v = options[name];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) {
      throw new Error(`vitest-chaos plugin: ${name} is ${String(v)}; expected an integer >= 1 (or leave it out for no limit)`);
    }
  }
  const dryRun = options.dryRun ?? process.env.VITEST_CHAOS_DRY_RUN === '1';
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
      if (dryRun) log.log('vitest-chaos: DRY RUN: faults are validated and their targets chosen, nothing is applied');
      if (!result.ok) {
        log.warn(
          `vitest-chaos: tests that inject faults will be skipped:\n` +
            result.problems.map((p) => `  - ${p.requirement}: ${p.detail}\n    fix: ${p.fix}`).join('\n'),
        );
      }
      if (result.kernel)
        log.warn(`vitest-chaos: tests that inject these kinds will be skipped: ${result.kernel.detail}\n    fix: ${result.kernel.fix}`);
      let metricsSocket: string | undefined;
      if (port !== undefined) {
        // One server per run, however many projects configure the plugin.
        if (!metricsServer) {
          metricsServer = startMetricsServer({ port });
          const server = await metricsServer;
          log.log(`vitest-chaos: metrics at ${server.url}`);
          vitest.onClose(() => server.close());
        }
        metricsSocket = (await metricsServer).socketPath;
      }
      // The run's file of injection times goes with the run.
      if (options.maxInjectionsPerMinute !== undefined) vitest.onClose(() => removeRunRate(process.pid));
      project.provide('vitestChaos', {
        allowTargets: options.allowTargets ?? [],
        seed,
        preflight: result,
        ...(metricsSocket ? { metricsSocket } : {}),
        dryRun,
        maxTargets: options.maxTargets,
        maxInjectionsPerMinute: options.maxInjectionsPerMinute,
        runPid: process.pid,
      });
    },
  };
}
