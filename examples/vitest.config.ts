import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { chaos } from '../src/plugin.js';
import { ChaosReporter } from '../src/reporter.js';

const src = (p: string) => fileURLToPath(new URL(`../src/${p}`, import.meta.url));

// In your project: `import { chaos } from 'vitest-chaos/plugin'` and no aliases.
export default defineConfig({
  plugins: [chaos()],
  resolve: {
    alias: [
      { find: /^vitest-chaos\/plugin$/, replacement: src('plugin.ts') },
      { find: /^vitest-chaos$/, replacement: src('index.ts') },
    ],
  },
  test: {
    root: fileURLToPath(new URL('.', import.meta.url)),
    include: ['**/*.gameday.ts'],
    reporters: [
      'verbose',
      new ChaosReporter({
        outputFile: fileURLToPath(new URL('../reports/gameday.json', import.meta.url)),
        html: fileURLToPath(new URL('../reports/gameday.html', import.meta.url)),
        progress: true,
      }),
    ],
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
