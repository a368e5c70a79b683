// `npm run soak`: the reliability runs that are too long for the test command
// (issue 14). The four soak workers at once (4 workers, their own targets),
// then the spec fuzz at full size and the self-chaos cases. Sizes:
// VITEST_CHAOS_SOAK_SECONDS (60), VITEST_CHAOS_FUZZ_RUNS (3000), VITEST_CHAOS_FUZZ_APPLY (10).
import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';
import { chaos } from '../src/plugin.js';

const src = (p: string) => fileURLToPath(new URL(`../src/${p}`, import.meta.url));
process.env.VITEST_CHAOS_FUZZ_RUNS ??= '3000';
process.env.VITEST_CHAOS_FUZZ_APPLY ??= '10';

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
    include: ['soak/*.soak.ts'],
    exclude: [...configDefaults.exclude],
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
    globalSetup: ['test/helpers/global-setup.ts'],
    fileParallelism: true,
    maxWorkers: 4,
    minWorkers: 4,
    testTimeout: 600_000,
    hookTimeout: 120_000,
  },
});
