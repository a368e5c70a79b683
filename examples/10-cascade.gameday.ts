// 10 Cascade: PostgreSQL, Redis and the API are SIGKILLed 300 ms apart; the engine's restart
// policy brings each back, in whatever order, and each has to find the others again (the
// API waits for the database at start, nginx asks Docker's DNS for the API's new address).
// Hypothesis: the stack serves orders again within 10 s of the last kill, by itself.
// SLOs: errors < 2% (expected to break: nothing answers while they are down); total recovery
// (first kill to the first order that succeeds after the last failure) under 12 s.
import { describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { faultWindow, kernelFacts, kernelOf, report, summarize } from './trading/findings.js';
import { orderLoad } from './trading/order-flow.js';
import { tradingStackPerFile } from './trading/per-file.js';

describe('10 cascade', () => {
  const file = tradingStackPerFile();

  it('database, Redis and API killed in quick succession: orders are back within 10 s of the last kill', async () => {
    const { stack, flow } = file;
    const kill = { kind: 'process-kill', signal: 'SIGKILL' } as const;
    const result = await chaos.experiment({
      name: '10 cascade',
      hypothesis:
        'Given 40 req/s of order flow, when PostgreSQL, Redis and the API are SIGKILLed 300 ms apart, the engine restarts them and orders succeed again within 10 s of the last kill',
      severity: 'critical',
      steadyState: { load: orderLoad(flow), slos: { errorRate: { max: 0.02 } }, windowMs: 500 },
      baselineMs: 1500,
      faults: [
        { atMs: 0, fault: { ...kill, target: stack.postgres } },
        { atMs: 300, fault: { ...kill, target: stack.redis } },
        { atMs: 600, fault: { ...kill, target: stack.api } },
      ],
      durationMs: 2000,
      abortOnBreach: false,
      recovery: { withinMs: 10_000, maxWaitMs: 15_000 },
    });
    const firstKill = faultWindow(result, 0).applying;
    const lastKill = faultWindow(result, 2).applying;
    const lastFailed = flow.outcomes.findLast((o) => !o.ok);
    const back = lastFailed && flow.outcomes.find((o) => o.ok && o.kind === 'order' && o.at > lastFailed.at);
    const totalRecoveryMs = back ? back.at + back.ms - firstKill : null;
    const restarts = {
      postgres: await stack.restartCount('postgres'),
      redis: await stack.restartCount('redis'),
      api: await stack.restartCount('api'),
    };
    report('10 cascade', {
      verdict: result.verdict,
      kills: result.faults.map((f) => `${f.target}: ${JSON.stringify(f.stats)}`),
      restarts,
      whileDown: summarize(flow.between(firstKill, lastKill + 2000)),
      killSpreadMs: lastKill - firstKill,
      totalRecoveryMs,
      recoveryMsAfterObserve: result.recoveryMs,
      ...kernelFacts(result, [stack.names.postgres, stack.names.redis, stack.names.api]),
    });

    // All three were killed, 300 ms apart, and the engine restarted each.
    for (const f of result.faults) expect(f.stats).toMatchObject({ signalled: 1, exited: 1 });
    expect(lastKill - firstKill).toBeGreaterThanOrEqual(550);
    expect(restarts).toEqual({ postgres: expect.any(Number), redis: expect.any(Number), api: expect.any(Number) });
    for (const n of Object.values(restarts)) expect(n).toBeGreaterThanOrEqual(1);
    // The outage was seen by the users (the verdict is reported: most of it falls while the kills' injects wait for the exits).
    expect(summarize(flow.between(firstKill, lastKill + 2000)).failed).toBeGreaterThan(10);
    // Total recovery, first kill to orders flowing again.
    expect(totalRecoveryMs).not.toBeNull();
    expect(back!.at + back!.ms - lastKill).toBeLessThan(10_000);
    expect(result.recovered).toBe(true);
    // What the kernel saw: each of the three main processes died of SIGKILL (none was
    // signalled in the baseline).
    const mains = { [stack.names.postgres]: 'postgres', [stack.names.redis]: 'redis-server', [stack.names.api]: 'node' };
    for (const [name, comm] of Object.entries(mains)) {
      expect(kernelOf(result, 'baseline', name).processExits.filter((e) => e.signal !== null)).toEqual([]);
      expect(kernelOf(result, 'observe', name).processExits).toContainEqual(expect.objectContaining({ comm, signal: 'SIGKILL' }));
    }
  });
});
