// A Vitest reporter for game days and resilience gates: at the end of the run,
// one table row per experiment (verdict, first breach, rollback, recovery,
// seed), and optionally the results as JSON for dashboards and CI artifacts.
// Use beside the default reporter:
//   reporters: ['default', new ChaosReporter({ outputFile: 'chaos-report.json' })]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';
import type { ExperimentResult } from '../experiment/result.js';
import { describeBreach } from '../experiment/describe.js';

export interface ChaosReporterOptions {
  /** Where to write every experiment's full result as JSON. Default: nowhere. */
  outputFile?: string;
  /** Where the table goes. Default: process.stdout. */
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
    r.breaches[0] ? describeBreach(r.breaches[0]).split(' in window')[0]! : '-',
    r.rollbackMs === null ? '-' : `${r.rollbackMs.toFixed(1)} ms`,
    r.recoveryMs === null ? 'never' : `${r.recoveryMs.toFixed(0)} ms`,
    String(r.seed),
  ]);
  const head = ['experiment', 'verdict', 'first breach', 'rollback', 'recovery', 'seed'];
  const widths = head.map((h, i) => Math.min(70, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  const line = (cells: string[]) => cells.map((c, i) => (c.length > widths[i]! ? `${c.slice(0, widths[i]! - 1)}…` : c.padEnd(widths[i]!))).join('  ');
  return ['', 'vitest-chaos experiments', line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), ''].join('\n');
}

export class ChaosReporter implements Reporter {
  constructor(private readonly options: ChaosReporterOptions = {}) {}

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const entries = collectExperiments(modules);
    const table = formatTable(entries);
    if (table) (this.options.write ?? ((s) => process.stdout.write(s)))(`${table}\n`);
    if (this.options.outputFile) {
      mkdirSync(dirname(this.options.outputFile), { recursive: true });
      writeFileSync(this.options.outputFile, `${JSON.stringify({ experiments: entries }, null, 2)}\n`);
    }
  }
}
