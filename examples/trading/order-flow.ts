// The order flow: the game day's steady-state load. Traders ask for quotes and place
// orders through nginx: of every 10 requests, 7 are GET /quote/<SYMBOL> and 3 are
// POST /orders, symbols and sides drawn from a seeded generator (the same seed, the same
// flow). It is a `request` function for chaos.experiment's load, and it keeps every
// outcome with its wall-clock time, so an experiment can tell what happened when
// (time to recover, errors per fault step, where quotes came from).
import type { LoadOptions } from 'vitest-chaos';

export const SYMBOLS = ['ACME', 'BOLT', 'CRUX', 'DYNA', 'EPIC', 'FLUX', 'GRID', 'HALO', 'IONX', 'JADE'] as const;

export interface Outcome {
  /** Date.now() when the request started. */
  at: number;
  kind: 'quote' | 'order';
  ok: boolean;
  /** HTTP status; 0 when no answer came (connection refused, reset, timeout). */
  status: number;
  ms: number;
  /** The API's `error` (db-breaker-open, pool-timeout, deadline, ...) or the client's. */
  error?: string;
  /** Where the quote came from: cache, db, db-fallback (quotes and orders). */
  source?: string;
}

export interface OrderFlow {
  /** The load's request function. */
  request: (signal: AbortSignal) => Promise<void>;
  outcomes: Outcome[];
  /** Outcomes that started in [fromMs, toMs) (Date.now() times). */
  between(fromMs: number, toMs: number): Outcome[];
  /** The first successful request that started at or after `atMs`, or undefined. */
  firstSuccessAfter(atMs: number): Outcome | undefined;
  /** The last failed request that started before `beforeMs`, or undefined. */
  lastFailureBefore(beforeMs: number): Outcome | undefined;
}

/** `load` options of an experiment: the order flow at `rps` requests per second. */
export function orderLoad(flow: OrderFlow, rps = 40, timeoutMs = 2000): LoadOptions {
  return { request: flow.request, rps, timeoutMs, concurrency: 64 };
}

export function orderFlow(baseUrl: string, seed = 1): OrderFlow {
  let state = seed >>> 0 || 1;
  const next = () => {
    // xorshift32: small, seeded, enough to spread symbols and sides
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  let n = 0;
  const outcomes: Outcome[] = [];

  async function request(signal: AbortSignal): Promise<void> {
    const i = n++;
    const kind = i % 10 < 7 ? 'quote' : 'order';
    const symbol = SYMBOLS[Math.floor(next() * SYMBOLS.length)] as string;
    const at = Date.now();
    const t0 = performance.now();
    const o: Outcome = { at, kind, ok: false, status: 0, ms: 0 };
    outcomes.push(o);
    try {
      const r =
        kind === 'quote'
          ? await fetch(`${baseUrl}/quote/${symbol}`, { signal })
          : await fetch(`${baseUrl}/orders`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ symbol, side: next() < 0.5 ? 'buy' : 'sell', qty: 1 + Math.floor(next() * 100) }),
              signal,
            });
      const text = await r.text();
      o.status = r.status;
      let body: { error?: string; source?: string; quoteSource?: string } = {};
      try {
        body = JSON.parse(text);
      } catch {
        body = {}; // nginx's own error pages are HTML
      }
      o.source = body.source ?? body.quoteSource;
      o.ok = r.status === 200 || r.status === 201;
      if (!o.ok) o.error = body.error ?? `status ${r.status}`;
    } catch (err) {
      o.error = signal.aborted ? 'timeout' : ((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message);
    } finally {
      o.ms = performance.now() - t0;
    }
    if (!o.ok) throw new Error(`${kind} ${o.status || ''} ${o.error ?? ''}`.trim());
  }

  return {
    request,
    outcomes,
    between: (fromMs, toMs) => outcomes.filter((o) => o.at >= fromMs && o.at < toMs),
    firstSuccessAfter: (atMs) => outcomes.find((o) => o.ok && o.at >= atMs),
    lastFailureBefore: (beforeMs) => outcomes.findLast((o) => !o.ok && o.at < beforeMs),
  };
}

/** A few requests of each kind before measuring: caches filled, pools and connections open. */
export async function warmUp(baseUrl: string, n = 30): Promise<void> {
  const flow = orderFlow(baseUrl, 7);
  for (let i = 0; i < n; i++) await flow.request(AbortSignal.timeout(5000));
}
