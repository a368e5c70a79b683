// `npm run soak` (issue 14): the four soak workers at once (4 workers, each
// with its own targets; VITEST_CHAOS_SOAK_SECONDS, default 60), then the spec
// fuzz at full size (package.json: VITEST_CHAOS_FUZZ_RUNS 3000 per kind,
// VITEST_CHAOS_FUZZ_APPLY 10 valid specs applied per kind), then dockerd restarted while faults
// are in force (soak/dockerd-restart.last.ts, SOAK_LAST=1).
import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';
import { chaos } from '../src/plugin.js';

const src = (p: string) => fileURLToPath(new URL(`../src/${p}`, import.meta.url));

export default defineConfig({
  plugins: [chaos()],
  resolve: {
    alias: [
      { find: /^vitest-chaos\/plugin$/, replacement: src('plugin.ts') },
      { find: /^vitest-chaos$/, replacement: src('index.ts') },
    ],
  },
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    // SOAK_LAST=1: the file that restarts dockerd (every container of the machine stops), alone, last.
    include: process.env.SOAK_LAST ? ['soak/*.last.ts'] : ['soak/*.soak.ts'],
    exclude: [...configDefaults.exclude],
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
    globalSetup: ['test/helpers/global-setup.ts'],
    fileParallelism: true,
    maxWorkers: 4,
    testTimeout: 600_000,
    hookTimeout: 120_000,
  },
});
