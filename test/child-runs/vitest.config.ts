// Config for the fixtures that integration tests run in a child Vitest (VC_FIXTURE picks one).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { chaos } from '../../src/plugin.js';

const src = (p: string) => fileURLToPath(new URL(`../../src/${p}`, import.meta.url));

export default defineConfig({
  plugins: [chaos({ seed: 5 })],
  resolve: { alias: [{ find: /^vitest-chaos$/, replacement: src('index.ts') }] },
  test: {
    root: fileURLToPath(new URL('.', import.meta.url)),
    include: [process.env.VC_FIXTURE ?? '*.fixture.ts'],
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
  },
});
