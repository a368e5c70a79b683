// The run's resilience score: validated experiments weighted by severity, as a
// share of all experiments weighted alike. 100 = every hypothesis held.
import type { ExperimentResult, Severity } from '../experiment/result.js';

export const SEVERITY_WEIGHTS: Record<Severity, number> = { low: 1, medium: 2, high: 3, critical: 5 };

export const SCORE_FORMULA = 'score = 100 × Σ weight(validated) / Σ weight(all), weight: low 1, medium 2, high 3, critical 5';

export interface ResilienceScore {
  /** 0..100; null without experiments. */
  score: number | null;
  validatedWeight: number;
  totalWeight: number;
}

export function resilienceScore(results: ReadonlyArray<Pick<ExperimentResult, 'verdict' | 'severity'>>): ResilienceScore {
  let validatedWeight = 0;
  let totalWeight = 0;
  for (const r of results) {
    // Results written before severity existed count as medium.
    const w = SEVERITY_WEIGHTS[r.severity] ?? SEVERITY_WEIGHTS.medium;
    totalWeight += w;
    if (r.verdict === 'validated') validatedWeight += w;
  }
  return { score: totalWeight ? (100 * validatedWeight) / totalWeight : null, validatedWeight, totalWeight };
}
