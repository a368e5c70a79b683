// 07 Redis failure: the cache is stopped for 4 s, then started again (empty: no persistence).
// Hypothesis: the API degrades, it does not fail: every quote comes from PostgreSQL instead
// ("db-fallback"; the Redis breaker skips the dead cache), errors stay under 1% and p99
// under 1 s, and the cache serves again within 3 s of Redis' return.
// SLOs: errors < 1%, p99 < 500 ms; recovery within 3 s.
import { describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { connectErrorCount, faultWindow, kernelFacts, kernelOf, report, summarize } from './trading/findings.js';
import { orderLoad } from './trading/order-flow.js';
import { tradingStackPerFile } from './trading/per-file.js';

describe('07 Redis failure', () => {
  const file = tradingStackPerFile();

  it('without its cache the API answers from the database (degraded), then uses the cache again', async () => {
    const { stack, flow } = file;
    const result = await chaos.experiment({
      name: '07 Redis failure',
      hypothesis:
        'Given 40 req/s of order flow, when Redis is down for 4 s, quotes come from PostgreSQL, errors stay under 1% and p99 under 1 s, and the cache serves again within 3 s',
      severity: 'high',
      steadyState: { load: orderLoad(flow), slos: { errorRate: { max: 0.01 }, p99: { maxMs: 1000 } }, windowMs: 1000 },
      baselineMs: 1500,
      faults: [{ kind: 'container-stop', target: stack.redis }],
      observe: [stack.api],
      durationMs: 4000,
      recovery: { withinMs: 3000 },
    });
    const { from, to } = faultWindow(result);
    const during = summarize(flow.between(from + 200, to));
    const after = flow.between(to, to + 3000);
    // The load stops once the SLOs hold again; ask on (a quote every 50 ms) until one comes from the cache.
    let firstCacheHit = after.find((o) => o.ok && o.source === 'cache');
    while (!firstCacheHit && Date.now() < to + 5000) {
      const at = Date.now();
      const q = (await (await fetch(`${stack.url}/quote/ACME`)).json()) as { source: string };
      if (q.source === 'cache') firstCacheHit = { at, kind: 'quote', ok: true, status: 200, ms: 0, source: 'cache' };
      else await new Promise((r) => setTimeout(r, 50));
    }
    const api = await stack.apiStats();
    report('07 Redis failure', {
      verdict: result.verdict,
      stop: result.faults[0]?.stats,
      whileRedisDown: during,
      redisBreaker: api.breakers.redis,
      afterStart: summarize(after),
      firstCacheHitAfterStartMs: firstCacheHit ? firstCacheHit.at - to : null,
      ...kernelFacts(result, [stack.names.redis, stack.names.api]),
    });

    expect(result.faults[0]?.stats).toMatchObject({ foundStopped: 0 });
    expect(result).toHoldSteadyState();
    // Degraded: while Redis was down every quote came from the database.
    expect(during.n).toBeGreaterThan(50);
    expect(during.sources['db-fallback'] ?? 0).toBeGreaterThan(0.9 * (during.n - during.failed));
    expect(during.sources.cache ?? 0).toBe(0);
    expect(api.redisErrors).toBeGreaterThan(0);
    expect(api.breakers.redis.opens).toBeGreaterThanOrEqual(1);
    // The cache is used again after Redis' return.
    expect(firstCacheHit).toBeDefined();
    expect(firstCacheHit!.at - to).toBeLessThan(3000);
    expect(result).toRecoverWithin(3000);
    // What the kernel saw: redis-server exited by itself (a clean shutdown on the stop's
    // SIGTERM: no signal), and the API, which lived on, had connects to it fail (ioredis
    // reconnects every 200 ms; while the container is stopped its name does not resolve, so
    // most attempts end before any connect(2): the one that got an address is seen,
    // abandoned by the 500 ms connect timeout, ECONNABORTED: exactly 1 in each of 4 runs,
    // counted in observe or recovery as the timeout falls).
    const redis = kernelOf(result, 'observe', stack.names.redis);
    expect(redis.processExits).toContainEqual(expect.objectContaining({ comm: 'redis-server', signal: null }));
    const base = kernelOf(result, 'baseline', stack.names.api);
    const k = kernelOf(result, 'observe', stack.names.api);
    const kAfter = kernelOf(result, 'recovery', stack.names.api);
    expect(connectErrorCount(base)).toBe(0);
    expect(connectErrorCount(k) + connectErrorCount(kAfter)).toBeGreaterThan(0);
    expect(k.processExits).toEqual([]);
  });
});
