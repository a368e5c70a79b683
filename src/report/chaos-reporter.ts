// A Vitest reporter for game days and resilience gates: at the end of the run,
// one table row per experiment (verdict, first breach, rollback, recovery,
// seed), and optionally the results as JSON for dashboards and CI artifacts.
// Use beside the default reporter:
//   reporters: ['default', new ChaosReporter({ outputFile: 'chaos-report.json', html: 'chaos.html' })]
// It works alike on a merged run (`vitest --merge-reports`): the experiments
// travel in each test's meta, which the blob reporter keeps.
import { mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Reporter, TestCase, TestModule } from 'vitest/node';
import { ChaosMetrics } from './chaos-metrics.js';
import { renderHtmlReport } from './html-report.js';
import type { ExperimentResult } from '../experiment/result.js';
import { describeBreach } from '../experiment/describe.js';
import { kernelChanges } from '../observe/kernel-changes.js';

export interface ChaosReporterOptions {
  /** Where to write every experiment's full result as JSON. Default: nowhere. */
  outputFile?: string;
  /** Where to write the self-contained HTML report (opens offline in any browser). Default: nowhere. */
  html?: string;
  /**
   * Where to write the run's final chaos metrics in Prometheus text format
   * (node-exporter textfile collector, or `curl --data-binary @FILE` to a Pushgateway). Default: nowhere.
   */
  metricsFile?: string;
  /** Print where a long run is: each test as it starts ("[3/12] ..."), and the report's generation. Default false. */
  progress?: boolean;
  /** Where the table and progress go. Default: process.stdout. */
  write?: (text: string) => void;
}

export interface ChaosReportEntry {
  test: string;
  file: string;
  result: ExperimentResult;
}

export function collectExperiments(modules: ReadonlyArray<TestModule>): ChaosReportEntry[] {
  const out: ChaosReportEntry[] = [];
  for (const m of modules) {
    for (const t of m.children.allTests()) {
      const meta = t.meta() as { vitestChaos?: { experiments: ExperimentResult[] } };
      for (const result of meta.vitestChaos?.experiments ?? []) out.push({ test: t.fullName, file: m.moduleId, result });
    }
  }
  return out;
}

export function formatTable(entries: ChaosReportEntry[]): string {
  if (entries.length === 0) return '';
  const rows = entries.map(({ result: r }) => [
    r.name,
    r.verdict,
    r.breaches[0] ? describeBreach(r.breaches[0]).split(' in window')[0]! : r.verdict === 'inconclusive' ? r.reason : '-',
    r.rollbackMs === null ? '-' : `${r.rollbackMs.toFixed(1)} ms`,
    r.recoveryMs === null ? 'never' : `${r.recoveryMs.toFixed(0)} ms`,
    r.faults.map((f) => (f.targets ?? [f.target]).filter(Boolean).join('+') || '-').join(', ') || '-',
    String(r.seed),
  ]);
  const head = ['experiment', 'verdict', 'first breach', 'rollback', 'recovery', 'targets', 'seed'];
  const widths = head.map((h, i) => Math.min(70, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  const line = (cells: string[]) =>
    cells.map((c, i) => (c.length > widths[i]! ? `${c.slice(0, widths[i]! - 1)}…` : c.padEnd(widths[i]!))).join('  ');
  const kernel = entries.flatMap(({ result: r }) => {
    const changes = kernelChanges(r.kernel, 3);
    return changes.length ? [`  ${r.name}: ${changes.map((c) => c.text).join('; ')}`] : [];
  });
  return [
    '',
    'vitest-chaos experiments',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    ...(kernel.length ? ['', 'what the kernel saw change most against the baseline', ...kernel] : []),
    '',
  ].join('\n');
}

export class ChaosReporter implements Reporter {
  private total = 0;
  private started = 0;

  constructor(private readonly options: ChaosReporterOptions = {}) {}

  private write(text: string): void {
    (this.options.write ?? ((s) => process.stdout.write(s)))(text);
  }

  onTestModuleCollected(module: TestModule): void {
    this.total += [...module.children.allTests()].length;
  }

  onTestCaseReady(test: TestCase): void {
    if (!this.options.progress) return;
    this.started++;
    this.write(`vitest-chaos: [${this.started}/${Math.max(this.total, this.started)}] ${test.fullName}\n`);
  }

  async onTestRunEnd(modules: ReadonlyArray<TestModule>): Promise<void> {
    const entries = collectExperiments(modules);
    const table = formatTable(entries);
    if (table) this.write(`${table}\n`);
    const { outputFile, html, metricsFile } = this.options;
    if (outputFile) {
      mkdirSync(dirname(outputFile), { recursive: true });
      writeFileSync(outputFile, `${JSON.stringify({ experiments: entries }, null, 2)}\n`);
    }
    if (html) {
      const t0 = performance.now();
      if (this.options.progress) this.write(`vitest-chaos: writing the HTML report of ${entries.length} experiment(s)\n`);
      const page = renderHtmlReport(entries, {
        progress: this.options.progress ? (line) => this.write(`vitest-chaos: HTML report: ${line}\n`) : undefined,
      });
      mkdirSync(dirname(html), { recursive: true });
      writeFileSync(html, page);
      this.write(
        `vitest-chaos: HTML report ${html} (${(statSync(html).size / 1024).toFixed(0)} KB, ${(performance.now() - t0).toFixed(0)} ms)\n`,
      );
    }
    if (metricsFile) {
      const metrics = new ChaosMetrics();
      for (const e of entries) metrics.recordResult(e.result);
      mkdirSync(dirname(metricsFile), { recursive: true });
      // Written then renamed: a textfile collector must never read half a file.
      writeFileSync(`${metricsFile}.tmp`, await metrics.text());
      renameSync(`${metricsFile}.tmp`, metricsFile);
    }
  }
}
