// The user's side, as the README tells it: the plugin in vitest.config, nothing else.
import { defineConfig } from 'vitest/config';
import { chaos } from 'vitest-chaos/plugin';

export default defineConfig({
  plugins: [chaos()],
  test: { testTimeout: 60_000, hookTimeout: 60_000 },
});
