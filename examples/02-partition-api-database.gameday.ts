// 02 Partition between the API and the database: every packet between them is dropped
// (no RST, no error: the API's queries and connects just get no answer).
// Hypothesis: quotes keep answering from the Redis cache; orders fail fast (the query
// timeout and the database breaker answer 503/504 in about a second: no request hangs to the
// client's 2 s timeout); orders succeed again within 3 s of the partition healing.
// SLOs: quote availability (probe) >= 95%, p99 under 1.8 s; recovery within 3 s.
import { describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { connectErrorCount, faultWindow, kernelFacts, kernelOf, perSecond, report, summarize } from './trading/findings.js';
import { orderLoad } from './trading/order-flow.js';
import { tradingStackPerFile } from './trading/per-file.js';

describe('02 partition api <-> database', () => {
  const file = tradingStackPerFile();

  it('quotes answer from the cache, orders fail fast and are back within 3 s of the heal', async () => {
    const { stack, flow } = file;
    const result = await chaos.experiment({
      name: '02 partition api <-> database',
      hypothesis:
        'Given 40 req/s of order flow, when the API cannot reach PostgreSQL for 4 s, quotes keep answering, no request hangs past 1.8 s, and orders succeed again within 3 s of the heal',
      severity: 'high',
      steadyState: {
        load: orderLoad(flow),
        probes: [{ name: 'quote ACME', http: { url: `${stack.url}/quote/ACME` }, intervalMs: 100 }],
        slos: { availability: { min: 0.95 }, p99: { maxMs: 1800 } },
        windowMs: 1000,
      },
      baselineMs: 1500,
      faults: [{ kind: 'network-partition', target: stack.api, peer: stack.postgres, action: 'drop' }],
      durationMs: 4000,
      recovery: { withinMs: 3000 },
    });
    const { from, to } = faultWindow(result);
    const during = flow.between(from + 1500, to); // past the first timeouts: the breaker's regime
    const orders = summarize(during.filter((o) => o.kind === 'order'));
    const quotes = summarize(during.filter((o) => o.kind === 'quote'));
    const ordersAfter = flow.outcomes.filter((o) => o.kind === 'order' && o.at >= to);
    const firstOrderBack = ordersAfter.find((o) => o.ok);
    const api = await stack.apiStats();
    report('02 partition api <-> database', {
      verdict: result.verdict,
      partition: result.faults[0]?.stats,
      ordersDuringPartition: orders,
      quotesDuringPartition: quotes,
      dbBreaker: api.breakers.db,
      dbTimeouts: api.dbTimeouts,
      firstOrderBackAfterHealMs: firstOrderBack ? firstOrderBack.at + firstOrderBack.ms - to : null,
      ...kernelFacts(result, [stack.names.api]),
    });

    // The partition held: packets between the API and PostgreSQL were dropped.
    const s = result.faults[0]?.stats ?? {};
    expect((s.egressDropped ?? 0) + (s.ingressDropped ?? 0)).toBeGreaterThan(0);
    expect(result).toHoldSteadyState();
    // Orders failed, fast: the breaker opened and answered 503 without waiting.
    expect(orders.errorRate).toBeGreaterThan(0.9);
    expect(orders.errors['db-breaker-open'] ?? 0).toBeGreaterThan(0);
    expect(api.breakers.db.opens).toBeGreaterThanOrEqual(1);
    // Quotes kept answering from the cache.
    expect(quotes.errorRate).toBeLessThan(0.01);
    expect(quotes.sources.cache).toBe(quotes.n);
    // Orders came back within 3 s of the heal.
    expect(firstOrderBack).toBeDefined();
    expect(firstOrderBack!.at + firstOrderBack!.ms - to).toBeLessThan(3000);
    expect(result).toRecoverWithin(3000);
    // What the kernel saw: the API's connects to the database got no answer and were given
    // up by pg's connect timeout (ECONNABORTED: 12-13 in 4 s measured) and any segment in
    // flight was retransmitted (0-1); in the baseline neither happened.
    const base = kernelOf(result, 'baseline', stack.names.api);
    const k = kernelOf(result, 'observe', stack.names.api);
    expect(base.tcpRetransmits + connectErrorCount(base)).toBeLessThanOrEqual(1);
    expect(k.tcpRetransmits + connectErrorCount(k)).toBeGreaterThanOrEqual(3);
    expect(perSecond(k.tcpRetransmits + connectErrorCount(k), k)).toBeGreaterThan(
      4 * perSecond(base.tcpRetransmits + connectErrorCount(base), base),
    );
  });
});
