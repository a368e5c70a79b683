// 01 Database sudden death. PostgreSQL's postmaster gets SIGKILL (no shutdown, no
// checkpoint); the engine's restart policy starts it again and it replays its WAL.
// Hypothesis: quotes keep coming from the Redis cache throughout, and orders succeed again
// within 5 s of the kill. SLOs: errors under 2% (expected to break: orders fail while the
// database is down, that is the outage we measure), recovery within 5 s of the kill.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { faultWindow, kernelOf, report, summarize } from './trading/findings.js';
import { orderFlow, orderLoad, warmUp, type OrderFlow } from './trading/order-flow.js';
import { startTradingStack, type TradingStack } from './trading/stack.js';

describe('01 database sudden death', () => {
  let stack: TradingStack;
  let flow: OrderFlow;
  beforeAll(async () => {
    stack = await startTradingStack();
    await warmUp(stack.url);
    flow = orderFlow(stack.url);
  });
  afterAll(() => stack?.stop());

  it('orders are back within 5 s of a SIGKILL of PostgreSQL; quotes never stop', async () => {
    const result = await chaos.experiment({
      name: '01 database sudden death',
      hypothesis:
        'Given 40 req/s of order flow, when PostgreSQL is SIGKILLed and restarted by the engine, quotes keep answering from the cache and orders succeed again within 5 s',
      severity: 'critical',
      steadyState: { load: orderLoad(flow), slos: { errorRate: { max: 0.02 } }, windowMs: 500 },
      baselineMs: 1500,
      faults: [{ kind: 'process-kill', target: stack.postgres, signal: 'SIGKILL' }],
      durationMs: 4000,
      abortOnBreach: false,
      recovery: { withinMs: 5000 },
    });
    const kill = faultWindow(result).applying;
    const orders = flow.outcomes.filter((o) => o.kind === 'order');
    const firstFailed = orders.find((o) => !o.ok && o.at >= kill - 100);
    const lastFailed = orders.findLast((o) => !o.ok);
    const back = lastFailed && orders.find((o) => o.ok && o.at > lastFailed.at);
    const timeToRecoverMs = back ? back.at + back.ms - kill : null;
    const during = flow.between(kill, kill + 5000);
    const quotes = summarize(during.filter((o) => o.kind === 'quote'));
    report('01 database sudden death', {
      verdict: result.verdict,
      killed: result.faults[0]?.stats,
      postgresRestarts: await stack.restartCount('postgres'),
      ordersDuringOutage: summarize(during.filter((o) => o.kind === 'order')),
      quotesDuringOutage: quotes,
      timeToRecoverMs,
    });

    // The kill happened, and the engine brought PostgreSQL back.
    expect(result.faults[0]?.stats).toMatchObject({ signalled: 1, exited: 1 });
    expect(await stack.restartCount('postgres')).toBeGreaterThanOrEqual(1);
    // The outage was seen: orders failed after the kill. (The verdict is reported, not pinned:
    // most of the outage falls while process-kill's inject waits for the exit, and whether a
    // breaching window is judged after it returns varies from run to run.)
    expect(firstFailed).toBeDefined();
    // Quotes kept answering from the cache through the outage.
    expect(quotes.n).toBeGreaterThan(50);
    expect(quotes.errorRate).toBeLessThan(0.01);
    // Orders came back within 5 s of the kill, and stayed back.
    expect(timeToRecoverMs).not.toBeNull();
    expect(timeToRecoverMs!).toBeLessThan(5000);
    expect(result).toRecoverWithin(5000);
    // The kernel saw the postmaster die of SIGKILL (issue 9 item 5: asserted once results carry it).
    const k = kernelOf(result, 'observe', stack.names.postgres);
    if (k) expect(k.processExits.some((e) => e.comm === 'postgres' && (e.signal === 9 || e.signal === 'SIGKILL'))).toBe(true);
  });
});
