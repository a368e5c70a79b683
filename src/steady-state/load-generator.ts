// Steady, open-loop traffic: requests are scheduled at `rps` whatever the
// target does (a slow target does not slow the schedule down), at most
// `concurrency` in flight, and each latency is measured from the time the
// request was meant to start, so queueing behind a stalled target counts
// (no coordinated omission).
import { Pool } from 'undici';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import type { Recorder, Sample } from './recorder.js';

export interface LoadOptions {
  /** URL to GET (or `method`). Either this or `request`. */
  url?: string;
  method?: string;
  headers?: Record<string, string>;
  /** A request of your own instead of `url`: resolve = success, throw = failure. */
  request?: (signal: AbortSignal) => Promise<unknown>;
  /** Requests per second to schedule. */
  rps: number;
  /** Requests in flight at most; more wait (their wait counts in their latency). Default 64. */
  concurrency?: number;
  /** A request not done by then is a failure ("timeout"). Default 2000 ms. */
  timeoutMs?: number;
  /** Which HTTP statuses count as success. Default: below 500 except 429... i.e. 2xx and 3xx. */
  okStatus?: (status: number) => boolean;
  /** 'uniform' spacing (default) or 'poisson' arrivals drawn from `seed`. */
  arrival?: 'uniform' | 'poisson';
  /** Seed of the arrival draws. Default 1. */
  seed?: number;
  /** Keep connections alive between requests (default true). */
  keepAlive?: boolean;
}

export interface LoadTotals {
  scheduled: number;
  completed: number;
  failed: number;
  inFlight: number;
  /** FNV-1a digest of the first 64 scheduled offsets (in µs): equal for equal seeds. */
  scheduleDigest: string;
}

const DIGEST_ARRIVALS = 64;
const defaultOk = (s: number) => s >= 200 && s < 400;

export class LoadGenerator {
  private readonly pool?: Pool;
  private readonly path?: string;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly queue: number[] = []; // intended start times waiting for a slot
  private nextAt = 0;
  /** Sum of the drawn gaps: the schedule itself, free of the clock's rounding. */
  private offset = 0;
  private readonly rng;
  private digest = 0x811c9dc5;
  private readonly startedAt: number;
  readonly totals: LoadTotals = { scheduled: 0, completed: 0, failed: 0, inFlight: 0, scheduleDigest: '' };
  private readonly concurrency: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly opts: LoadOptions,
    readonly recorder: Recorder,
  ) {
    this.concurrency = opts.concurrency ?? 64;
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.rng = xoroshiro128plus(opts.seed ?? 1);
    if (opts.url) {
      const u = new URL(opts.url);
      this.path = `${u.pathname}${u.search}`;
      this.pool = new Pool(u.origin, { connections: this.concurrency, pipelining: 1 });
    }
    this.startedAt = recorder.now();
    this.nextAt = this.startedAt;
    this.tick();
  }

  /** Stops scheduling, waits for requests in flight (bounded by their timeout), closes connections. */
  async stop(): Promise<LoadTotals> {
    if (!this.stopped) {
      this.stopped = true;
      if (this.timer) clearTimeout(this.timer);
      this.queue.length = 0;
      await Promise.allSettled([...this.inFlight]);
      this.abort.abort();
      await this.pool?.close().catch(() => undefined);
    }
    return this.snapshot();
  }

  snapshot(): LoadTotals {
    return { ...this.totals, inFlight: this.inFlight.size, scheduleDigest: (this.digest >>> 0).toString(16) };
  }

  private gapMs(): number {
    const mean = 1000 / this.opts.rps;
    if (this.opts.arrival !== 'poisson') return mean;
    return -Math.log(1 - uniformFloat64(this.rng)) * mean;
  }

  private tick = (): void => {
    if (this.stopped) return;
    const now = this.recorder.now();
    while (this.nextAt <= now) {
      const at = this.nextAt;
      const offset = this.offset;
      this.offset += this.gapMs();
      this.nextAt = this.startedAt + this.offset;
      this.totals.scheduled++;
      if (this.totals.scheduled <= DIGEST_ARRIVALS) {
        const v = Math.round(offset * 1000);
        this.digest = Math.imul(this.digest ^ (v & 0xffff), 0x01000193) ^ (v >>> 16);
        this.digest = Math.imul(this.digest, 0x01000193);
      }
      this.queue.push(at);
    }
    this.drain();
    this.timer = setTimeout(this.tick, Math.max(1, Math.min(50, this.nextAt - this.recorder.now())));
  };

  private drain(): void {
    while (this.queue.length && this.inFlight.size < this.concurrency) {
      const at = this.queue.shift() as number;
      const waited = this.recorder.now() - at;
      if (waited >= this.timeoutMs) {
        this.finish({ startedAtMs: at, latencyMs: waited, ok: false, error: 'timeout (queued)' });
        continue;
      }
      const p = this.one(at, this.timeoutMs - waited).finally(() => {
        this.inFlight.delete(p);
        if (!this.stopped) this.drain();
      });
      this.inFlight.add(p);
    }
  }

  private async one(at: number, budgetMs: number): Promise<void> {
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(Math.max(1, Math.ceil(budgetMs)))]);
    let ok = false;
    let error: string | undefined;
    try {
      if (this.opts.request) {
        await this.opts.request(signal);
        ok = true;
      } else {
        const r = await this.pool!.request({
          path: this.path!,
          method: (this.opts.method ?? 'GET') as 'GET',
          headers: this.opts.headers,
          signal,
          reset: this.opts.keepAlive === false,
        });
        await r.body.dump();
        ok = (this.opts.okStatus ?? defaultOk)(r.statusCode);
        if (!ok) error = `status ${r.statusCode}`;
      }
    } catch (err) {
      error = classify(err, signal);
    }
    this.finish({ startedAtMs: at, latencyMs: this.recorder.now() - at, ok, error });
  }

  private finish(s: Sample): void {
    this.totals.completed++;
    if (!s.ok) this.totals.failed++;
    this.recorder.record(s);
  }
}

function classify(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) return 'timeout';
  const e = err as { code?: string; name?: string; message?: string };
  return e.code ?? e.name ?? 'error';
}
