// The run's chaos metrics as Prometheus sees them (prom-client). Fed with
// events: live from the workers (the plugin's /metrics), or rebuilt from the
// experiments' results (the reporter's metricsFile, merged shards included).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ExperimentResult } from '../experiment/result.js';

export type ChaosEvent =
  | { type: 'inject'; kind: string; applySeconds: number | null }
  | { type: 'revert'; kind: string }
  | { type: 'experiment'; verdict: string; rollback: string | null; sloViolations: string[]; recoverySeconds: number | null };

/** What an experiment's result adds to the metrics (its faults' injects are counted apart). */
export function experimentEvent(r: ExperimentResult): ChaosEvent {
  const rollback = r.error ? (r.error.includes('cancelled') ? 'cancelled' : 'error') : r.rollbackMs !== null ? 'breach' : null;
  return {
    type: 'experiment',
    verdict: r.verdict,
    rollback,
    sloViolations: [...new Set(r.breaches.map((b) => b.slo))],
    recoverySeconds: r.recoveryMs === null ? null : r.recoveryMs / 1000,
  };
}

export const METRIC_NAMES = [
  'chaos_experiments_total',
  'chaos_fault_injections_total',
  'chaos_rollbacks_total',
  'chaos_slo_violations_total',
  'chaos_active_faults',
  'chaos_fault_apply_seconds',
  'chaos_recovery_seconds',
] as const;

export class ChaosMetrics {
  readonly registry = new Registry();
  private readonly experiments = new Counter({
    name: 'chaos_experiments_total',
    help: 'Chaos experiments finished, by verdict',
    labelNames: ['verdict'],
    registers: [this.registry],
  });
  private readonly injections = new Counter({
    name: 'chaos_fault_injections_total',
    help: 'Faults put in force, by kind',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  private readonly rollbacks = new Counter({
    name: 'chaos_rollbacks_total',
    help: 'Experiments whose faults were all reverted early, by reason (breach, error, cancelled)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  private readonly violations = new Counter({
    name: 'chaos_slo_violations_total',
    help: 'Experiments in which an SLO was breached, by SLO',
    labelNames: ['slo'],
    registers: [this.registry],
  });
  private readonly active = new Gauge({
    name: 'chaos_active_faults',
    help: 'Faults in force now, by kind',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  private readonly apply = new Histogram({
    name: 'chaos_fault_apply_seconds',
    help: 'Time from inject() to the fault in force',
    labelNames: ['kind'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly recovery = new Histogram({
    name: 'chaos_recovery_seconds',
    help: 'Time from the last revert to the first window that holds every SLO',
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });

  constructor() {
    // Every verdict exists from the start, so a query by verdict sees 0, not "no data".
    for (const v of ['validated', 'rejected', 'aborted', 'inconclusive']) this.experiments.inc({ verdict: v }, 0);
  }

  record(e: ChaosEvent): void {
    switch (e.type) {
      case 'inject':
        this.injections.inc({ kind: e.kind });
        this.active.inc({ kind: e.kind });
        if (e.applySeconds !== null) this.apply.observe({ kind: e.kind }, e.applySeconds);
        break;
      case 'revert':
        this.active.dec({ kind: e.kind });
        break;
      case 'experiment':
        this.experiments.inc({ verdict: e.verdict });
        if (e.rollback) this.rollbacks.inc({ reason: e.rollback });
        for (const slo of e.sloViolations) this.violations.inc({ slo });
        if (e.recoverySeconds !== null) this.recovery.observe(e.recoverySeconds);
        break;
    }
  }

  /** Adds a finished experiment, its faults' injections included (for metrics rebuilt from results). */
  recordResult(r: ExperimentResult): void {
    for (const f of r.faults) {
      if (f.injectedAtMs === null) continue;
      this.record({ type: 'inject', kind: f.kind, applySeconds: f.applyMs === null || f.applyMs === undefined ? null : f.applyMs / 1000 });
      this.record({ type: 'revert', kind: f.kind });
    }
    this.record(experimentEvent(r));
  }

  /** Prometheus text exposition format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
