// 06 Connection pool exhaustion. PostgreSQL accepts at most 2 connections at once from the
// API (`connection-limit`, the eBPF kind of issue 9 item 3: over the limit, a connect fails at
// once). The API's pool may hold 5 and replaces its connections every second, so it keeps
// trying to open more than the database lets in.
// Hypothesis: the pool copes with what it has: requests wait for one of the 2 connections
// rather than fail, errors stay under 1%, p99 under 1 s.
// Until the connection-limit kind exists, this experiment is skipped (the reason is printed);
// its verdict is not pinned yet: nothing has been measured.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, ChaosSpecError, type FaultSpec } from 'vitest-chaos';
import { faultWindow, kernelOf, report, summarize } from './trading/findings.js';
import { orderFlow, orderLoad, warmUp, type OrderFlow } from './trading/order-flow.js';
import { startTradingStack, type TradingStack } from './trading/stack.js';

/** Whether this build knows the kind (validation names the kind field when it does not). */
function kindExists(kind: string): boolean {
  try {
    chaos.validate({ kind, target: 'probe' } as unknown as FaultSpec);
    return true;
  } catch (err) {
    return !(err instanceof ChaosSpecError && err.problems.some((p) => p.field === 'kind'));
  }
}
const HAS_CONNECTION_LIMIT = kindExists('connection-limit');
if (!HAS_CONNECTION_LIMIT)
  console.log('[skip] 06 connection pool exhaustion: this build has no fault kind "connection-limit" (issue 9 item 3)');

describe.skipIf(!HAS_CONNECTION_LIMIT)('06 connection pool exhaustion (needs the connection-limit kind)', () => {
  let stack: TradingStack;
  let flow: OrderFlow;
  beforeAll(async () => {
    stack = await startTradingStack({ apiEnv: { POOL_MAX: '5', CONN_LIFETIME_S: '1' } });
    await warmUp(stack.url);
    flow = orderFlow(stack.url);
  });
  afterAll(() => stack?.stop());

  it('the database lets 2 of the pool`s 5 connections in: what do orders see?', async () => {
    const spec = {
      kind: 'connection-limit',
      target: stack.postgres,
      max: 2,
      connections: 'inbound',
      port: 5432,
      peer: stack.api,
      mode: 'reject',
    } as unknown as FaultSpec;
    const result = await chaos.experiment({
      name: '06 connection pool exhaustion',
      hypothesis:
        'Given 40 req/s of order flow, when PostgreSQL admits at most 2 connections from the API, requests wait for a pooled connection: errors stay under 1% and p99 under 1 s',
      severity: 'high',
      steadyState: { load: orderLoad(flow), slos: { errorRate: { max: 0.01 }, p99: { maxMs: 1000 } }, windowMs: 1000 },
      baselineMs: 1500,
      faults: [spec],
      durationMs: 5000,
      abortOnBreach: false,
      recovery: { withinMs: 3000 },
    });
    const { from, to } = faultWindow(result);
    const orders = summarize(flow.between(from + 1000, to).filter((o) => o.kind === 'order'));
    const api = await stack.apiStats();
    const stats = result.faults[0]?.stats ?? {};
    report('06 connection pool exhaustion', {
      verdict: result.verdict,
      limit: stats,
      ordersWhileLimited: orders,
      dbErrors: api.dbErrors,
      pool: api.pool,
    });

    // The limit turned connections away (the kind counts them), and the API felt it.
    const rejected = Object.entries(stats)
      .filter(([k]) => /reject|refused|over/i.test(k))
      .reduce((n, [, v]) => n + v, 0);
    expect(rejected).toBeGreaterThan(0);
    expect(api.dbErrors + api.poolWaitTimeouts + orders.failed).toBeGreaterThan(0);
    expect(result).toRecoverWithin(3000);
    // The kernel saw the API's refused connects (issue 9 item 5).
    const k = kernelOf(result, 'observe', stack.names.api);
    if (k) expect(Object.values(k.connectErrors).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });
});
