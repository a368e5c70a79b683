// The cgroup v2 part of the suite: run by scripts/v2-guest.sh inside a pure
// cgroup v2 guest (systemd, Docker's systemd cgroup driver) under QEMU's
// software emulation, so timeouts are generous and assertions are ratios.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { chaos } from '../../src/plugin.js';

const src = (p: string) => fileURLToPath(new URL(`../../src/${p}`, import.meta.url));

export default defineConfig({
  plugins: [chaos()],
  root: fileURLToPath(new URL('../..', import.meta.url)),
  resolve: {
    alias: [
      { find: /^vitest-chaos\/plugin$/, replacement: src('plugin.ts') },
      { find: /^vitest-chaos$/, replacement: src('index.ts') },
    ],
  },
  test: {
    include: ['test/v2/**/*.test.ts'],
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
    globalSetup: ['test/helpers/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
