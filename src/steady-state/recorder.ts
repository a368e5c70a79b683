// Records every request's outcome into time buckets (by completion time) with
// HDR histograms, so any sliding window and each phase can be summarised with
// bounded memory however long the run: buckets older than the longest window
// are folded away, phases keep one histogram each.
import * as hdr from 'hdr-histogram-js';

export interface Sample {
  /** ms since the recorder's start when the request was meant to start. */
  startedAtMs: number;
  latencyMs: number;
  ok: boolean;
  /** Short error class ("timeout", "status 503", "ECONNREFUSED"), when not ok. */
  error?: string;
}

export interface WindowStats {
  startMs: number;
  endMs: number;
  requests: number;
  errors: number;
  /** errors / requests; null when no request completed. */
  errorRate: number | null;
  /** Share of probe checks that passed, or of requests when there are no probes; null when none. */
  availability: number | null;
  /** Requests completed per second. */
  throughputRps: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  probes: number;
  probeFailures: number;
  /** Counts of each error class. */
  errorKinds: Record<string, number>;
  /** Sampled values (PromQL SLOs) by name: lowest and highest in the window; NaN marks a failed sample. */
  gauges: Record<string, { min: number; max: number; samples: number }>;
}

interface Bucket {
  index: number;
  requests: number;
  errors: number;
  probes: number;
  probeFailures: number;
  hist: hdr.Histogram;
  errorKinds: Map<string, number>;
  gauges: Map<string, { min: number; max: number; samples: number }>;
}

const US = 1000; // latencies are recorded in microseconds

function newHistogram(): hdr.Histogram {
  return hdr.build({ bitBucketSize: 'packed', numberOfSignificantValueDigits: 3, lowestDiscernibleValue: 1 });
}

function toMs(h: hdr.Histogram, p: number): number | null {
  return h.totalCount === 0 ? null : h.getValueAtPercentile(p) / US;
}

export class Recorder {
  readonly t0 = performance.now();
  private readonly buckets: Bucket[] = [];
  private readonly phases = new Map<string, Bucket>();
  private phase = 'none';
  private readonly phaseSpans = new Map<string, { startMs: number; endMs: number }>();

  /**
   * @param bucketMs resolution of windows and of the recovery time
   * @param keepMs how far back windows may reach (the longest window)
   */
  constructor(
    readonly bucketMs = 100,
    private readonly keepMs = 10_000,
  ) {}

  now(): number {
    return performance.now() - this.t0;
  }

  /** Starts a phase: samples completing from now on count towards it. */
  setPhase(name: string): void {
    const now = this.now();
    const prev = this.phaseSpans.get(this.phase);
    if (prev) prev.endMs = now;
    this.phase = name;
    this.phaseSpans.set(name, { startMs: now, endMs: now });
  }

  record(s: Sample): void {
    const b = this.bucketAt(this.now());
    this.add(b, s);
    this.add(this.phaseBucket(), s);
  }

  recordProbe(ok: boolean, error?: string): void {
    const b = this.bucketAt(this.now());
    const p = this.phaseBucket();
    for (const x of [b, p]) {
      x.probes++;
      if (!ok) {
        x.probeFailures++;
        const k = `probe: ${error ?? 'failed'}`;
        x.errorKinds.set(k, (x.errorKinds.get(k) ?? 0) + 1);
      }
    }
  }

  /** A sampled value (e.g. a PromQL query's result) at this moment. */
  recordGauge(name: string, value: number): void {
    for (const x of [this.bucketAt(this.now()), this.phaseBucket()]) addGauge(x.gauges, name, { min: value, max: value, samples: 1 });
  }

  /** Summary of samples completed in (endMs - windowMs, endMs], at bucket resolution. */
  window(endMs: number, windowMs: number): WindowStats {
    const last = Math.floor(endMs / this.bucketMs) - 1; // buckets wholly before endMs
    const first = last - Math.round(windowMs / this.bucketMs) + 1;
    const agg = this.emptyBucket(-1);
    for (const b of this.buckets) if (b.index >= first && b.index <= last) this.merge(agg, b);
    return this.stats(agg, first * this.bucketMs, (last + 1) * this.bucketMs);
  }

  /** Summary of a whole phase. */
  phaseStats(name: string): WindowStats | null {
    const b = this.phases.get(name);
    const span = this.phaseSpans.get(name);
    if (!b || !span) return null;
    const end = name === this.phase ? this.now() : span.endMs;
    return this.stats(b, span.startMs, end);
  }

  private stats(b: Bucket, startMs: number, endMs: number): WindowStats {
    const seconds = Math.max(1e-9, (endMs - startMs) / 1000);
    const availability = b.probes > 0 ? 1 - b.probeFailures / b.probes : b.requests > 0 ? 1 - b.errors / b.requests : null;
    return {
      startMs,
      endMs,
      requests: b.requests,
      errors: b.errors,
      errorRate: b.requests ? b.errors / b.requests : null,
      availability,
      throughputRps: b.requests / seconds,
      p50Ms: toMs(b.hist, 50),
      p95Ms: toMs(b.hist, 95),
      p99Ms: toMs(b.hist, 99),
      maxMs: b.hist.totalCount ? b.hist.maxValue / US : null,
      probes: b.probes,
      probeFailures: b.probeFailures,
      errorKinds: Object.fromEntries(b.errorKinds),
      gauges: Object.fromEntries([...b.gauges].map(([k, g]) => [k, { ...g }])),
    };
  }

  private add(b: Bucket, s: Sample): void {
    b.requests++;
    b.hist.recordValue(Math.max(1, Math.round(s.latencyMs * US)));
    if (!s.ok) {
      b.errors++;
      const k = s.error ?? 'error';
      b.errorKinds.set(k, (b.errorKinds.get(k) ?? 0) + 1);
    }
  }

  private merge(into: Bucket, b: Bucket): void {
    into.requests += b.requests;
    into.errors += b.errors;
    into.probes += b.probes;
    into.probeFailures += b.probeFailures;
    into.hist.add(b.hist);
    for (const [k, v] of b.errorKinds) into.errorKinds.set(k, (into.errorKinds.get(k) ?? 0) + v);
    for (const [k, g] of b.gauges) addGauge(into.gauges, k, g);
  }

  private emptyBucket(index: number): Bucket {
    return { index, requests: 0, errors: 0, probes: 0, probeFailures: 0, hist: newHistogram(), errorKinds: new Map(), gauges: new Map() };
  }

  private phaseBucket(): Bucket {
    let p = this.phases.get(this.phase);
    if (!p) this.phases.set(this.phase, (p = this.emptyBucket(-1)));
    return p;
  }

  private bucketAt(ms: number): Bucket {
    const index = Math.floor(ms / this.bucketMs);
    const last = this.buckets[this.buckets.length - 1];
    if (last && last.index === index) return last;
    if (last && last.index > index) return this.buckets.find((b) => b.index === index) ?? last;
    const b = this.emptyBucket(index);
    this.buckets.push(b);
    // Bounded memory: drop what no window can reach any more.
    const oldest = index - Math.ceil(this.keepMs / this.bucketMs) - 2;
    while (this.buckets.length && (this.buckets[0] as Bucket).index < oldest) this.buckets.shift();
    return b;
  }
}

// NaN (a failed sample) wins both ends, so it is never hidden by a good one.
function addGauge(
  into: Map<string, { min: number; max: number; samples: number }>,
  name: string,
  g: { min: number; max: number; samples: number },
): void {
  const cur = into.get(name);
  if (!cur) {
    into.set(name, { ...g });
    return;
  }
  const pick = (a: number, b: number, f: (x: number, y: number) => number) => (Number.isNaN(a) || Number.isNaN(b) ? Number.NaN : f(a, b));
  cur.min = pick(cur.min, g.min, Math.min);
  cur.max = pick(cur.max, g.max, Math.max);
  cur.samples += g.samples;
}
