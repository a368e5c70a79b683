// Config of the report fixtures that test/integration/report.test.ts runs in
// child Vitest runs (sharded, then merged). VC_REPORT_DIR: where the merged run
// writes its JSON, HTML, JUnit and metrics file; VC_METRICS_PORT: serve metrics.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { chaos } from '../../src/plugin.js';
import { ChaosReporter } from '../../src/reporter.js';

const src = (p: string) => fileURLToPath(new URL(`../../src/${p}`, import.meta.url));
const dir = process.env.VC_REPORT_DIR;
const port = process.env.VC_METRICS_PORT;

export default defineConfig({
  plugins: [chaos({ seed: 7, ...(port ? { metrics: { port: Number(port) } } : {}) })],
  resolve: { alias: [{ find: /^vitest-chaos$/, replacement: src('index.ts') }] },
  test: {
    root: fileURLToPath(new URL('.', import.meta.url)),
    include: ['report-*.fixture.ts'],
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    ...(port ? { globalSetup: [fileURLToPath(new URL('./linger.ts', import.meta.url))] } : {}),
    ...(dir
      ? {
          reporters: [
            'default',
            ['junit', { outputFile: join(dir, 'junit.xml') }],
            new ChaosReporter({
              outputFile: join(dir, 'chaos.json'),
              html: join(dir, 'chaos.html'),
              metricsFile: join(dir, 'chaos.prom'),
              progress: true,
            }),
          ],
        }
      : {}),
  },
});
