export {
  ChaosReporter,
  ChaosReporter as default,
  collectExperiments,
  formatTable,
  type ChaosReportEntry,
  type ChaosReporterOptions,
} from './report/chaos-reporter.js';
export { renderHtmlReport, type HtmlReportOptions } from './report/html-report.js';
export { ChaosMetrics, METRIC_NAMES, type ChaosEvent } from './report/chaos-metrics.js';
export { resilienceScore, SCORE_FORMULA, SEVERITY_WEIGHTS } from './report/resilience-score.js';
