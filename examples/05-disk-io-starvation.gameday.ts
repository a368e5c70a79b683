// 05 Disk I/O starvation of the database. PostgreSQL runs durable here (fsync on, every
// commit waits for its WAL write; wal_level minimal, so WAL writes are O_DIRECT and the
// cgroup v1 blkio throttle applies to them), and its disk is capped at 5 writes/s.
// Hypothesis: quotes (cache) are unaffected and orders slow down but stay within their 2 s
// deadline: errors < 1%. Expected to be refuted (a finding): 12 orders/s cannot commit on 5
// writes/s; the pool's 5 connections all wait on the disk, orders queue behind them and
// time out.
import { describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { faultWindow, kernelFacts, kernelOf, report, summarize } from './trading/findings.js';
import { orderLoad } from './trading/order-flow.js';
import { tradingStackPerFile } from './trading/per-file.js';

describe('05 disk I/O starvation of the database', () => {
  const file = tradingStackPerFile({
    postgresSettings: {
      fsync: 'on',
      synchronous_commit: 'on',
      wal_level: 'minimal',
      max_wal_senders: '0',
      wal_sync_method: 'open_datasync',
    },
  });

  it('orders queue behind a starved disk and fail (finding); quotes are unaffected', async () => {
    const { stack, flow } = file;
    const result = await chaos.experiment({
      name: '05 disk I/O starvation of the database',
      hypothesis: 'Given 40 req/s of order flow, when the database disk allows 5 writes/s, errors stay under 1%',
      severity: 'high',
      steadyState: { load: orderLoad(flow), slos: { errorRate: { max: 0.01 } }, windowMs: 1000 },
      baselineMs: 1500,
      faults: [{ kind: 'io-throttle', target: stack.postgres, path: '/var/lib/postgresql/data', writeIops: 5 }],
      durationMs: 5000,
      abortOnBreach: false,
      recovery: { withinMs: 5000 },
    });
    const { from, to } = faultWindow(result);
    const during = flow.between(from + 500, to);
    const orders = summarize(during.filter((o) => o.kind === 'order'));
    const quotes = summarize(during.filter((o) => o.kind === 'quote'));
    report('05 disk I/O starvation', {
      verdict: result.verdict,
      ioThrottle: result.faults[0]?.stats,
      ordersWhileStarved: orders,
      quotesWhileStarved: quotes,
      ...kernelFacts(result, [stack.names.postgres]),
    });

    // The cap held writes back: PostgreSQL's direct WAL writes hit it.
    expect(result.faults[0]?.stats.writeOps).toBeGreaterThan(0);
    // Expected verdict: refuted. Orders time out behind the disk...
    expect(result.verdict).toBe('rejected');
    expect(result.breaches[0]?.slo).toBe('errorRate');
    expect(orders.errorRate).toBeGreaterThan(0.1);
    // ...while quotes, served from the cache, do not notice.
    expect(quotes.errorRate).toBeLessThan(0.01);
    expect(result).toRecoverWithin(5000);
    // What the kernel saw: PostgreSQL's processes waited on block I/O for 100s of ms (the
    // throttle lets one write through every 200 ms), far longer than in the baseline.
    const base = kernelOf(result, 'baseline', stack.names.postgres);
    const k = kernelOf(result, 'observe', stack.names.postgres);
    expect(k.blockIoWaits).toBeGreaterThan(5);
    expect(k.blockIoLatencyP99Us!).toBeGreaterThanOrEqual(100_000);
    expect(k.blockIoLatencyP99Us!).toBeGreaterThanOrEqual(4 * (base.blockIoLatencyP99Us ?? 0));
  });
});
