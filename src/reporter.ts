export { ChaosReporter, ChaosReporter as default, collectExperiments, formatTable, type ChaosReportEntry, type ChaosReporterOptions } from './report/chaos-reporter.js';
