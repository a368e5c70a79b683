// The reports of a sharded run: two shards run real experiments on the demo
// system (child Vitest runs, blob reporter), each serving its chaos metrics to
// a real Prometheus; `vitest --merge-reports` then writes one JSON, one HTML,
// one JUnit and one metrics file holding every experiment of both shards; the
// HTML report opens offline in headless Chromium with a chart per experiment.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExperimentResult } from 'vitest-chaos';
import { startDemoSystem, type DemoSystem } from '../../examples/demo-system.js';
import { renderHtmlReport } from '../../src/report/html-report.js';
import { closeChromium, hasChromium, openOffline } from '../helpers/chromium.js';
import { freePort, hasPrometheus, startPrometheus, type RunningPrometheus } from '../helpers/prometheus.js';

const ARTIFACTS = join(process.cwd(), '.cache/artifacts');

/** How many of each value, every one of `keys` included (0 when absent). */
function count(values: string[], keys: string[]): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(keys.map((k) => [k, 0]));
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

function vitest(args: string[], env: Record<string, string>): Promise<{ code: number; output: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      ['node_modules/vitest/vitest.mjs', 'run', '--config', 'test/child-runs/report.config.ts', ...args],
      { env: { ...process.env, ...env }, timeout: 120_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
    ),
  );
}

describe.skipIf(!hasPrometheus() || !hasChromium())('reports of a sharded run', () => {
  let demo: DemoSystem;
  let prom: RunningPrometheus;
  const dir = mkdtempSync(join(tmpdir(), 'vc-report-'));
  const ports = [0, 0];
  const shards: { code: number; output: string }[] = [];
  let merged: { code: number; output: string };
  let experiments: { test: string; file: string; result: ExperimentResult }[] = [];
  let ran: string[][] = [];

  beforeAll(async () => {
    demo = await startDemoSystem();
    for (let i = 0; i < 5; i++) await (await fetch(demo.url)).text();
    ports[0] = await freePort();
    ports[1] = await freePort();
    prom = await startPrometheus({ 'shard-1': `127.0.0.1:${ports[0]}`, 'shard-2': `127.0.0.1:${ports[1]}` });
    const env = {
      VC_URL: demo.url,
      VC_URL_PATIENT: demo.url.replace('timeoutMs=1000', 'timeoutMs=5000'),
      VC_TARGET: demo.api.getId(),
      VC_PEER: demo.backend.getId(),
    };
    for (const i of [1, 2]) {
      shards.push(
        await vitest([`--shard=${i}/2`, '--reporter=blob', `--outputFile.blob=${join(dir, 'blob', `shard-${i}.json`)}`], {
          ...env,
          VC_METRICS_PORT: String(ports[i - 1]),
        }),
      );
    }
    merged = await vitest([`--merge-reports=${join(dir, 'blob')}`], { VC_REPORT_DIR: dir });
    experiments = JSON.parse(readFileSync(join(dir, 'chaos.json'), 'utf8')).experiments;
    // which shard ran which file: each shard's blob names its files
    ran = [1, 2].map((i) => {
      const blob = readFileSync(join(dir, 'blob', `shard-${i}.json`), 'utf8');
      return ['report-a', 'report-b', 'report-c'].filter((f) => blob.includes(`${f}.fixture.ts`));
    });
  }, 240_000);
  afterAll(async () => {
    await closeChromium();
    await prom?.stop();
    await demo?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the merged JSON lists the experiments of both shards', () => {
    expect(readdirSync(join(dir, 'blob')).sort()).toEqual(['shard-1.json', 'shard-2.json']);
    const byName = Object.fromEntries(experiments.map((e) => [e.result.name, e]));
    expect(Object.keys(byName).sort()).toEqual(['backend +1500 ms', 'backend +30 ms', 'backend cut']);
    console.info(`shard 1 ran ${ran[0]}, shard 2 ran ${ran[1]}; merged: ${experiments.length} experiments`);
    expect(ran[0]!.length).toBeGreaterThan(0);
    expect(ran[1]!.length).toBeGreaterThan(0);
    expect([...ran[0]!, ...ran[1]!].sort()).toEqual(['report-a', 'report-b', 'report-c']);
    // the table and the report's progress are printed by the merged run
    expect(merged.output).toContain('vitest-chaos experiments');
    expect(merged.output).toMatch(/vitest-chaos: HTML report .*chaos\.html \(\d+ KB/);
    // The verdicts each fixture meant (its own test asserts it, so a shard fails otherwise).
    // The other tests check the reports against whatever the experiments returned.
    const verdicts = experiments.map((e) => `${e.result.name}: ${e.result.verdict} (${e.result.reason})`).join('; ');
    expect(
      [byName['backend +30 ms']!.result.verdict, byName['backend +1500 ms']!.result.verdict, byName['backend cut']!.result.verdict],
      verdicts,
    ).toEqual(['validated', 'rejected', 'aborted']);
    expect(
      shards.map((s) => s.code),
      shards.map((s) => s.output.slice(-3000)).join('\n'),
    ).toEqual([0, 0]);
    expect(merged.code, merged.output.slice(-3000)).toBe(0);
  });

  it('JUnit output carries each verdict as a property', () => {
    const xml = readFileSync(join(dir, 'junit.xml'), 'utf8');
    for (const { result: r } of experiments)
      expect(xml).toContain(`<property name="vitest-chaos.verdict" value="${r.name}: ${r.verdict}">`);
    expect(xml.match(/<property name="vitest-chaos" value="[^"]*\| seed \d+">/g)).toHaveLength(3);
  });

  it("Prometheus scraped each shard's /metrics during its run: experiments by verdict", async () => {
    const q = 'sum by (verdict) (last_over_time(chaos_experiments_total[10m]))';
    const byVerdict = Object.fromEntries((await prom.query(q)).map((s) => [s.metric.verdict, s.value]));
    console.info(`PromQL ${q}: ${JSON.stringify(byVerdict)}`);
    // what the experiments returned (the merged JSON) is what Prometheus scraped
    expect(byVerdict).toEqual(
      count(
        experiments.map((e) => e.result.verdict),
        ['validated', 'rejected', 'aborted', 'inconclusive'],
      ),
    );
    // per run: a shard that ran two files (two workers) served the sum of both
    const byJob = Object.fromEntries(
      (await prom.query('sum by (job) (last_over_time(chaos_experiments_total[10m]))')).map((s) => [s.metric.job, s.value]),
    );
    console.info(`experiments by shard: ${JSON.stringify(byJob)}; files by shard: ${JSON.stringify(ran)}`);
    expect(byJob).toEqual({ 'shard-1': ran[0]!.length, 'shard-2': ran[1]!.length });
    const kinds = Object.fromEntries(
      (await prom.query('sum by (kind) (last_over_time(chaos_fault_injections_total[10m]))')).map((s) => [s.metric.kind, s.value]),
    );
    expect(kinds).toEqual({ 'network-latency': 2, 'network-partition': 1 });
    // a fault was seen in force by some scrape, and none was left in force at the end
    const maxActive = await prom.query('max(max_over_time(chaos_active_faults[10m]))');
    const lastActive = await prom.query('max(last_over_time(chaos_active_faults[10m]))');
    console.info(`chaos_active_faults: max ${maxActive[0]?.value}, last ${lastActive[0]?.value}`);
    expect(lastActive[0]!.value).toBe(0);
    const rollbacks = await prom.query('sum by (reason) (last_over_time(chaos_rollbacks_total[10m]))');
    expect(Object.fromEntries(rollbacks.map((s) => [s.metric.reason, s.value]))).toEqual(
      count(
        experiments.filter((e) => e.result.rollbackMs !== null).map(() => 'breach'),
        [],
      ),
    );
    const applied = await prom.query('sum(last_over_time(chaos_fault_apply_seconds_count[10m]))');
    expect(applied[0]!.value).toBe(3);
  });

  it('the metrics file holds the final values in Prometheus text format', () => {
    const text = readFileSync(join(dir, 'chaos.prom'), 'utf8');
    expect(text).toContain('# TYPE chaos_experiments_total counter');
    for (const [verdict, n] of Object.entries(
      count(
        experiments.map((e) => e.result.verdict),
        ['validated', 'rejected', 'aborted', 'inconclusive'],
      ),
    )) {
      expect(text).toContain(`chaos_experiments_total{verdict="${verdict}"} ${n}`);
    }
    expect(text).toContain('chaos_fault_injections_total{kind="network-latency"} 2');
    expect(text).toContain(
      `chaos_slo_violations_total{slo="errorRate"} ${experiments.filter((e) => e.result.breaches.some((b) => b.slo === 'errorRate')).length}`,
    );
    expect(text).toContain('chaos_active_faults{kind="network-latency"} 0');
    expect(text).toContain('chaos_fault_apply_seconds_count{kind="network-partition"} 1');
    if (experiments.some((e) => e.result.rollbackMs !== null)) expect(text).toMatch(/chaos_rollbacks_total\{reason="breach"\} [1-9]/);
    expect(text).toMatch(/chaos_recovery_seconds_count \d/);
  });

  it('the HTML report opens offline in Chromium: one chart per experiment, fault intervals and breaches marked', async () => {
    const html = join(dir, 'chaos.html');
    const size = readFileSync(html).length;
    const { page, consoleErrors, blockedRequests, close } = await openOffline(pathToFileURL(html).href);
    try {
      await page.click('#expand-all');
      await page.waitForFunction(`document.querySelectorAll('.chart[data-drawn="1"]').length === 3`, undefined, { timeout: 10_000 });
      const charts = await page.$$eval('.chart', (els) =>
        els.map((e) => ({
          uplot: e.querySelectorAll('.uplot canvas').length,
          faults: Number(e.getAttribute('data-fault-bands')),
          breaches: Number(e.getAttribute('data-breach-marks')),
        })),
      );
      const marks = await page.$$eval('details.exp', (els) =>
        els.map((d) => ({
          name: d.querySelector('summary strong')!.textContent,
          faults: d.querySelectorAll('li.fault-interval').length,
          breaches: d.querySelectorAll('li.breach-marker').length,
          rollback: d.querySelectorAll('li.rollback-marker').length,
          recovery: d.querySelectorAll('li.recovery-marker').length,
        })),
      );
      const summary = await page.$$eval('.card', (els) =>
        els.map((e) => `${e.firstElementChild!.textContent} ${e.lastElementChild!.textContent}`),
      );
      const formula = await page.textContent('#score-formula');
      console.info(
        `HTML ${(size / 1024).toFixed(0)} KB; charts ${JSON.stringify(charts)}; marks ${JSON.stringify(marks)}; cards ${JSON.stringify(summary)}; ${formula}`,
      );
      expect(consoleErrors).toEqual([]);
      expect(blockedRequests).toEqual([]);
      expect(charts).toHaveLength(3);
      const by = Object.fromEntries(marks.map((m) => [m.name, m]));
      experiments.forEach(({ result: r }, i) => {
        const injected = r.faults.filter((f) => f.injectedAtMs !== null).length;
        expect(charts[i]!.uplot).toBeGreaterThan(0);
        expect(charts[i]!.faults).toBe(injected);
        expect(by[r.name]).toMatchObject({
          faults: injected,
          rollback: r.rollbackMs === null ? 0 : 1,
          recovery: r.recoveryMs === null ? 0 : 1,
        });
        expect(by[r.name]!.breaches > 0).toBe(r.breaches.length > 0);
        expect(charts[i]!.breaches > 0).toBe(r.breaches.length > 0);
      });
      expect(charts.reduce((n, c) => n + c.faults, 0)).toBeGreaterThan(0);
      expect(charts.reduce((n, c) => n + c.breaches, 0)).toBeGreaterThan(0);
      // weights: +30 ms high 3, +1500 ms medium 2, cut critical 5
      const weight: Record<string, number> = { 'backend +30 ms': 3, 'backend +1500 ms': 2, 'backend cut': 5 };
      const validated = experiments.filter((e) => e.result.verdict === 'validated').reduce((n, e) => n + weight[e.result.name]!, 0);
      const verdicts = count(
        experiments.map((e) => e.result.verdict),
        ['validated', 'rejected', 'aborted', 'inconclusive'],
      );
      expect(summary).toEqual([
        `${verdicts.validated} validated`,
        `${verdicts.rejected} rejected`,
        `${verdicts.aborted} aborted`,
        `${verdicts.inconclusive} inconclusive`,
        `${((100 * validated) / 10).toFixed(0)} resilience score`,
      ]);
      expect(formula).toContain(`= 100 × ${validated} / 10 = ${((100 * validated) / 10).toFixed(1)}`);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: true });
      await page.locator('details.exp.v-rejected').screenshot({ path: join(ARTIFACTS, 'report-rejected.png') });
      copyFileSync(html, join(ARTIFACTS, 'report.html'));
      copyFileSync(join(dir, 'chaos.json'), join(ARTIFACTS, 'report.json'));
    } finally {
      await close();
    }
  });

  it('stays readable with 51 experiments: collapsed when validated, each chart drawn on opening', async () => {
    const many = Array.from({ length: 17 }, (_, k) =>
      experiments.map((e) => ({ ...e, result: { ...e.result, name: `${e.result.name} #${k + 1}` } })),
    ).flat();
    const file = join(dir, 'many.html');
    writeFileSync(file, renderHtmlReport(many));
    const { page, consoleErrors, close } = await openOffline(pathToFileURL(file).href);
    try {
      const before = await page.$$eval('.chart[data-drawn="1"]', (els) => els.length);
      const rows = await page.$$eval('table.summary tbody tr', (els) => els.length);
      await page.click('table.summary tbody tr:nth-child(49) a');
      await page.waitForFunction(`document.getElementById('exp-48').hasAttribute('open')`);
      const t0 = Date.now();
      await page.click('#expand-all');
      await page.waitForFunction(`document.querySelectorAll('.chart[data-drawn="1"]').length === 51`, undefined, { timeout: 20_000 });
      console.info(
        `51 experiments: ${rows} summary rows, ${before} charts drawn at open (the non-validated ones), all 51 drawn ${Date.now() - t0} ms after "expand all"`,
      );
      expect(rows).toBe(51);
      expect(before).toBe(17 * experiments.filter((e) => e.result.verdict !== 'validated').length);
      expect(consoleErrors).toEqual([]);
    } finally {
      await close();
    }
  });
});
