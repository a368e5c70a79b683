// The HTML report: one self-contained file (uPlot and the data inlined, no
// network needed to open it). A summary (verdicts, resilience score, a table
// linking to each experiment), then one collapsible section per experiment with
// its timeline chart (p50/p99, error rate, throughput; the baseline band, fault
// intervals, breaches, rollback and recovery marked), its faults' stats and the
// kernel's observations when there are any.
// uPlot: about 50 KB minified, canvas-drawn (fast with many charts and points),
// maintained, no dependencies; Chart.js or ECharts would weigh 200 KB to 1 MB.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { kernelChanges } from '../observe/kernel-changes.js';
import { describeBreach } from '../experiment/describe.js';
import type { Breach, ExperimentResult } from '../experiment/result.js';
import { CLIENT_SCRIPT } from './html-report-script.js';
import { resilienceScore, SCORE_FORMULA } from './resilience-score.js';

export interface HtmlReportEntry {
  test: string;
  file: string;
  result: ExperimentResult;
}

export interface HtmlReportOptions {
  title?: string;
  /** Called as the report is built, e.g. "charts 20/50". */
  progress?: (line: string) => void;
}

const require = createRequire(import.meta.url);
let uplotAssets: { js: string; css: string } | undefined;
function uplot(): { js: string; css: string } {
  if (!uplotAssets) {
    const dir = require.resolve('uplot/dist/uPlot.iife.min.js').replace(/uPlot\.iife\.min\.js$/, '');
    uplotAssets = { js: readFileSync(`${dir}uPlot.iife.min.js`, 'utf8'), css: readFileSync(`${dir}uPlot.min.css`, 'utf8') };
  }
  return uplotAssets;
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
// Inside <script>, only "</" (and "<!--") can end or confuse it.
const scriptSafe = (s: string) => s.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
const ms = (v: number | null | undefined, digits = 0) => (v === null || v === undefined ? '-' : `${v.toFixed(digits)} ms`);
const sec = (v: number | null | undefined) => (v === null || v === undefined ? '-' : `${(v / 1000).toFixed(2)} s`);

const VERDICTS = ['validated', 'rejected', 'aborted', 'inconclusive'] as const;

export function renderHtmlReport(entries: ReadonlyArray<HtmlReportEntry>, options: HtmlReportOptions = {}): string {
  const log = options.progress ?? (() => {});
  const title = options.title ?? 'vitest-chaos report';
  const results = entries.map((e) => e.result);
  const score = resilienceScore(results);
  const counts = Object.fromEntries(VERDICTS.map((v) => [v, results.filter((r) => r.verdict === v).length]));
  const { js, css } = uplot();

  const rows = entries
    .map(({ result: r }, i) => {
      const first = r.breaches[0] ? describeBreach(r.breaches[0]).split(' in window')[0] : r.verdict === 'inconclusive' ? r.reason : '-';
      return `<tr class="v-${esc(r.verdict)}"><td><a href="#exp-${i}">${esc(r.name)}</a></td><td><span class="badge ${esc(r.verdict)}">${esc(r.verdict)}</span></td><td>${esc(r.severity ?? 'medium')}</td><td>${esc(first)}</td><td>${ms(r.rollbackMs, 1)}</td><td>${r.recoveryMs === null ? (r.faults.some((f) => f.injectedAtMs !== null) ? 'never' : '-') : ms(r.recoveryMs)}</td><td>${esc(r.seed)}</td></tr>`;
    })
    .join('\n');

  const sections: string[] = [];
  entries.forEach((e, i) => {
    sections.push(renderExperiment(e, i));
    if ((i + 1) % 10 === 0 || i + 1 === entries.length) log(`sections ${i + 1}/${entries.length}`);
  });

  const data = entries.map(({ result: r }) => ({
    name: r.name,
    verdict: r.verdict,
    windowMs: r.windowMs,
    timeline: r.timeline,
    baseline: r.phases.baseline ? { p50Ms: r.phases.baseline.p50Ms, p99Ms: r.phases.baseline.p99Ms } : null,
    faults: r.faults.map((f) => ({ label: `${f.kind} on ${f.target || '?'}`, startMs: f.injectedAtMs, endMs: f.revertedAtMs })),
    breaches: breachRuns(r).map((b) => ({ slo: b.slo, startMs: b.startMs, endMs: b.endMs, windows: b.windows, text: b.text })),
    rollbackAtMs: r.rollbackMs === null ? null : lastRevert(r),
    recoveredAtMs: r.recoveryMs === null ? null : (lastRevert(r) ?? 0) + r.recoveryMs,
    durationMs: r.durationMs,
  }));

  const scoreText = score.score === null ? '-' : score.score.toFixed(0);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title>
<style>${css}
${STYLE}</style></head>
<body>
<header><h1>${esc(title)}</h1><p class="muted">${esc(entries.length)} experiment(s) in ${esc(new Set(entries.map((e) => e.file)).size)} file(s) · generated ${esc(new Date().toISOString())}</p></header>
<section id="summary">
<div class="cards">
${VERDICTS.map((v) => `<div class="card ${v}" data-verdict="${v}"><div class="num">${counts[v]}</div><div>${v}</div></div>`).join('\n')}
<div class="card score" id="score"><div class="num">${scoreText}</div><div>resilience score</div></div>
</div>
<p class="formula" id="score-formula">${esc(SCORE_FORMULA)} = 100 × ${score.validatedWeight} / ${score.totalWeight}${score.score === null ? '' : ` = ${score.score.toFixed(1)}`}</p>
<p><button type="button" id="expand-all">expand all</button> <button type="button" id="collapse-all">collapse all</button> <label><input type="checkbox" id="only-failed"> only rejected / aborted / inconclusive</label></p>
<table class="summary"><thead><tr><th>experiment</th><th>verdict</th><th>severity</th><th>first breach</th><th>rollback</th><th>recovery</th><th>seed</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</section>
<main>
${sections.join('\n')}
</main>
<script id="chaos-data" type="application/json">${scriptSafe(JSON.stringify(data))}</script>
<script>${scriptSafe(js)}</script>
<script>${scriptSafe(CLIENT_SCRIPT)}</script>
</body></html>
`;
}

export interface BreachRun {
  slo: string;
  /** End of the first and of the last breaching window. */
  startMs: number;
  endMs: number;
  windows: number;
  /** The worst window of the run, described. */
  text: string;
}

/**
 * Consecutive breaching windows of one SLO as one run: a rejected experiment
 * judged every 100 ms breaches in dozens of windows, which read as one event.
 */
export function breachRuns(r: ExperimentResult): BreachRun[] {
  const runs: (BreachRun & { worst: Breach })[] = [];
  const gap = Math.max(r.windowMs, 200);
  for (const b of [...r.breaches].sort((x, y) => x.window.endMs - y.window.endMs)) {
    const run = runs.findLast((x) => x.slo === b.slo);
    if (run && b.window.endMs - run.endMs <= gap) {
      run.endMs = b.window.endMs;
      run.windows++;
      if (worse(b, run.worst)) run.worst = b;
    } else {
      runs.push({ slo: b.slo, startMs: b.window.endMs, endMs: b.window.endMs, windows: 1, text: '', worst: b });
    }
  }
  return runs.map(({ worst, ...x }) => ({
    ...x,
    text: `${x.windows > 1 ? `${x.windows} windows ${sec(x.startMs)}–${sec(x.endMs)}, worst: ` : ''}${describeBreach(worst)}`,
  }));
}

function worse(a: Breach, b: Breach): boolean {
  if (a.actual === null || b.actual === null) return a.actual === null && b.actual !== null;
  const low = a.slo === 'availability' || a.slo === 'throughput' || a.stated.endsWith(` min ${a.threshold}`);
  return low ? a.actual < b.actual : a.actual > b.actual;
}

function lastRevert(r: ExperimentResult): number | null {
  const t = r.faults.map((f) => f.revertedAtMs).filter((v): v is number => v !== null);
  return t.length ? Math.max(...t) : null;
}

function renderExperiment({ test, file, result: r }: HtmlReportEntry, i: number): string {
  const b = r.phases.baseline;
  const o = r.phases.observe;
  const faults = r.faults
    .map(
      (f) =>
        `<tr><td>${esc(f.kind)}</td><td>${esc(f.target || '-')}</td><td><code>${esc(JSON.stringify(f.params))}</code></td><td>${sec(f.injectedAtMs)}</td><td>${sec(f.revertedAtMs)}</td><td>${ms(f.applyMs, 1)}</td><td>${
          Object.entries(f.stats)
            .map(([k, v]) => `${esc(k)}=${esc(v)}`)
            .join('<br>') || '-'
        }${f.error ? `<br><span class="bad">${esc(f.error)}</span>` : ''}</td></tr>`,
    )
    .join('\n');
  const runs = breachRuns(r);
  const breaches = runs.length
    ? `<ol class="breaches">${runs.map((x) => `<li>${esc(x.text)}</li>`).join('\n')}</ol>${
        r.breaches.length > runs.length
          ? `<details class="all-breaches"><summary>every breaching window (${r.breaches.length})</summary><ol>${r.breaches.map((x) => `<li>${esc(describeBreach(x))}</li>`).join('')}</ol></details>`
          : ''
      }`
    : '';
  // What the kernel saw (eBPF observers on the faults' targets): the largest changes against the baseline, then every figure.
  const changes = kernelChanges(r.kernel, 8);
  const obs = r.kernel
    ? `<h4>kernel observations</h4>${
        changes.length
          ? `<table class="kv"><tr><th>target</th><th>phase</th><th>changed most against the baseline</th></tr>${changes
              .map((x) => `<tr><td>${esc(x.target)}</td><td>${esc(x.phase)}</td><td>${esc(x.text.slice(x.target.length + 1))}</td></tr>`)
              .join('')}</table>`
          : '<p class="muted">nothing changed against the baseline</p>'
      }<details><summary>every observation by phase and target</summary><pre>${esc(JSON.stringify(r.kernel, null, 1))}</pre></details>`
    : r.kernelError
      ? `<p class="muted">kernel observations: ${esc(r.kernelError)}</p>`
      : '';
  const open = r.verdict === 'validated' ? '' : ' open';
  return `<details class="exp v-${esc(r.verdict)}" id="exp-${i}" data-index="${i}"${open}>
<summary><span class="badge ${esc(r.verdict)}">${esc(r.verdict)}</span> <strong>${esc(r.name)}</strong> <span class="muted">${esc(r.reason)}</span></summary>
<div class="body">
<p class="hyp">${esc(r.hypothesis)}</p>
<p class="muted">${esc(test)} · ${esc(file)} · seed ${esc(r.seed)} · severity ${esc(r.severity ?? 'medium')} · started ${esc(r.startedAt)} · ${sec(r.durationMs)} · window ${ms(r.windowMs)}</p>
<div class="chart" id="chart-${i}" data-index="${i}"></div>
<ul class="marks" id="marks-${i}"></ul>
<table class="kv"><tr><th></th><th>requests</th><th>errors</th><th>p50</th><th>p99</th><th>throughput</th></tr>
${(['baseline', 'observe', 'recovery'] as const)
  .map((p) => {
    const w = r.phases[p];
    return w
      ? `<tr><th>${p}</th><td>${w.requests}</td><td>${w.errors}</td><td>${ms(w.p50Ms, 1)}</td><td>${ms(w.p99Ms, 1)}</td><td>${w.throughputRps.toFixed(1)} req/s</td></tr>`
      : '';
  })
  .join('')}
</table>
${breaches ? `<h4>breaches</h4>${breaches}` : ''}
<p>rollback ${ms(r.rollbackMs, 1)} · recovery ${r.recoveryMs === null ? 'never' : ms(r.recoveryMs)}${b && o ? ` · p99 baseline ${ms(b.p99Ms, 1)} → observe ${ms(o.p99Ms, 1)}` : ''}</p>
<h4>faults</h4>
<table class="faults"><tr><th>kind</th><th>target</th><th>params</th><th>injected</th><th>reverted</th><th>apply</th><th>stats</th></tr>
${faults}
</table>
${obs}
${r.error ? `<p class="bad">error: ${esc(r.error)}</p>` : ''}
</div>
</details>`;
}

const STYLE = `
:root { font-family: system-ui, sans-serif; color: #1d2330; background: #f6f7f9; }
body { margin: 0 auto; max-width: 1200px; padding: 16px 24px; }
h1 { margin: 0 0 4px; font-size: 22px; }
.muted { color: #667085; font-size: 13px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { background: #fff; border-radius: 8px; padding: 10px 18px; box-shadow: 0 1px 2px #0002; min-width: 110px; border-top: 4px solid #98a2b3; }
.card .num { font-size: 28px; font-weight: 600; }
.card.validated { border-color: #12b76a; } .card.rejected { border-color: #f79009; } .card.aborted { border-color: #d92d20; } .card.inconclusive { border-color: #667085; } .card.score { border-color: #2e90fa; }
.formula { font-family: ui-monospace, monospace; font-size: 12px; color: #475467; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaecf0; vertical-align: top; }
table.summary { width: 100%; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; color: #fff; background: #98a2b3; }
.badge.validated { background: #12b76a; } .badge.rejected { background: #f79009; } .badge.aborted { background: #d92d20; } .badge.inconclusive { background: #667085; }
details.exp { background: #fff; border-radius: 8px; margin: 12px 0; box-shadow: 0 1px 2px #0002; }
details.exp > summary { cursor: pointer; padding: 10px 14px; }
details.exp .body { padding: 0 14px 14px; }
.hyp { font-style: italic; }
.chart { min-height: 320px; }
ul.marks { font-size: 12px; color: #475467; margin: 4px 0; }
.bad { color: #d92d20; }
code { font-size: 12px; word-break: break-all; }
body.only-failed tr.v-validated, body.only-failed details.v-validated { display: none; }
`;
