import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';
import { chaos } from './src/plugin.js';

const src = (p: string) => fileURLToPath(new URL(`./src/${p}`, import.meta.url));

export default defineConfig({
  plugins: [chaos()],
  resolve: {
    alias: [
      { find: /^vitest-chaos\/plugin$/, replacement: src('plugin.ts') },
      { find: /^vitest-chaos$/, replacement: src('index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // test/v2 needs a pure cgroup v2 host: scripts/v2-guest.sh runs it in a guest
    exclude: [...configDefaults.exclude, 'test/v2/**'],
    // No registry here, so no Ryuk image: our global setup removes our containers.
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
    globalSetup: ['test/helpers/global-setup.ts'],
    // Timing assertions share 2 cores: one file at a time keeps them honest.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
