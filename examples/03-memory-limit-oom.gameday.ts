// 03 Memory limit -> OOM kill. The API's memory is capped at 160 MiB (it uses about 50)
// and a report that needs 256 MiB is asked for while the cap is on.
// Hypothesis: the kernel OOM-kills the report's worker process (the bulkhead: reports run in
// a child process that makes itself the OOM killer's first choice, oom_score_adj 1000), not
// the API: orders keep flowing (errors < 1%, p99 < 500 ms) and the report fails with 500. The same report succeeds without the cap (control, before).
import Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { kernelFacts, kernelOf, report } from './trading/findings.js';
import { orderLoad } from './trading/order-flow.js';
import { tradingStackPerFile } from './trading/per-file.js';

const LIMIT = 160 * 2 ** 20;
const REPORT_MB = 256;

describe('03 memory limit -> OOM kill', () => {
  const file = tradingStackPerFile();

  it('a report past the memory limit is OOM-killed alone; orders keep flowing', async () => {
    const { stack, flow } = file;
    const reportUrl = `${stack.url}/report?mb=${REPORT_MB}`;
    const control = await fetch(reportUrl);
    expect(control.status).toBe(200); // without the cap the report fits
    const apiBefore = await stack.apiStats();
    // The API is its container's pid 1: the pid the host (and so the kernel's observations) knows it by.
    const apiHostPid = (await new Docker().getContainer(stack.api.getId()).inspect()).State.Pid;

    // Ask for the report once the cap is in force.
    const reportRun = (async () => {
      const end = Date.now() + 10_000;
      while (!chaos.activeFaults().some((f) => f.kind === 'memory-limit') && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 500));
      const r = await fetch(reportUrl);
      const text = await r.text();
      try {
        return { status: r.status, body: JSON.parse(text) as { error?: string; signal?: string } };
      } catch {
        // nginx's own error page (the API did not answer): keep it for the report, fail below
        return { status: r.status, body: { error: `not the API's answer: ${text.slice(0, 80)}` } as { error?: string; signal?: string } };
      }
    })();
    const result = await chaos.experiment({
      name: '03 memory limit -> OOM kill',
      hypothesis: `Given 40 req/s of order flow, when the API is capped at 160 MiB and a ${REPORT_MB} MiB report is asked for, only the report's worker is OOM-killed: errors stay under 1% and p99 under 500 ms`,
      severity: 'high',
      steadyState: { load: orderLoad(flow), slos: { errorRate: { max: 0.01 }, p99: { maxMs: 500 } }, windowMs: 1000 },
      baselineMs: 1500,
      faults: [{ kind: 'memory-limit', target: stack.api, bytes: LIMIT }],
      durationMs: 4000,
      recovery: { withinMs: 2000 },
    });
    const rep = await reportRun;
    const apiAfter = await stack.apiStats();
    report('03 memory limit -> OOM kill', {
      verdict: result.verdict,
      memoryLimit: result.faults[0]?.stats,
      report: rep,
      apiPid: { before: apiBefore.startedAt, after: apiAfter.startedAt },
      apiRestarts: await stack.restartCount('api'),
      apiHostPid,
      ...kernelFacts(result, [stack.names.api]),
    });

    // The kernel OOM-killed one process of the API's container: the report worker.
    expect(result.faults[0]?.stats.oomKills).toBeGreaterThanOrEqual(1);
    expect(result.faults[0]?.stats.targetOomKilled).toBe(0);
    expect(rep.status).toBe(500);
    expect(rep.body.signal).toBe('SIGKILL');
    // The API itself lived (same process, no restart) and kept serving orders.
    expect(apiAfter.startedAt).toBe(apiBefore.startedAt);
    expect(apiAfter.reportsKilled).toBe(apiBefore.reportsKilled + 1);
    expect(await stack.restartCount('api')).toBe(0);
    expect(result).toHoldSteadyState();
    // What the kernel saw: one OOM kill, of a node process that is not the API (its pid 1):
    // the report worker, which died of the SIGKILL; the API did not exit.
    const k = kernelOf(result, 'observe', stack.names.api);
    expect(kernelOf(result, 'baseline', stack.names.api).oomKills).toEqual([]);
    expect(k.oomKills).toHaveLength(1);
    const victim = k.oomKills[0]!;
    expect(victim.comm).toBe('node');
    expect(victim.pid).not.toBe(apiHostPid);
    expect(k.processExits).toContainEqual(expect.objectContaining({ pid: victim.pid, signal: 'SIGKILL' }));
    expect(k.processExits.map((e) => e.pid)).not.toContain(apiHostPid);
  });
});
