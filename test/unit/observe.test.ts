import { describe, expect, it } from 'vitest';
import { bucketBounds, histQuantile, histSum } from '../../src/kernel/observe-programs.js';
import { kernelChanges } from '../../src/observe/kernel-changes.js';
import { errnoName, type KernelObservation } from '../../src/observe/kernel-observer.js';
import { formatTable } from '../../src/report/chaos-reporter.js';
import type { ExperimentResult } from '../../src/experiment/result.js';

/** bpf/observe.bpf.c's bucket_of(), in TS, to check the bounds against. */
function bucketOf(v: number): number {
  if (v < 4) return v;
  const msb = Math.floor(Math.log2(v));
  return Math.min(159, msb * 4 + (Math.floor(v / 2 ** (msb - 2)) & 3));
}

const quiet = (over: Partial<KernelObservation> = {}): KernelObservation => ({
  tcpRetransmits: 0,
  connectAttempts: 10,
  connectErrors: {},
  runqueueDelayP99Us: 100,
  runqueueDelayTotalMs: 1,
  blockIoLatencyP99Us: null,
  blockIoBytes: 0,
  oomKills: [],
  processExits: [],
  connectsEstablished: 10,
  tcpRttP99Us: 200,
  blockIoOps: 0,
  blockIoWaits: 0,
  runqueueSamples: 50,
  eventsLost: 0,
  durationMs: 2000,
  ...over,
});

describe('observer histograms', () => {
  it('bounds every value in its own bucket, 4 buckets per power of two', () => {
    for (const v of [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 1000, 123_456, 2 ** 20 + 1, 5e9]) {
      const [lo, hi] = bucketBounds(bucketOf(v));
      expect(v).toBeGreaterThanOrEqual(lo);
      expect(v).toBeLessThan(hi);
      if (v >= 4) expect(hi / lo).toBeLessThanOrEqual(1.25);
    }
  });

  it('takes the p99 as the upper bound of the bucket holding it', () => {
    const hist = new Array<number>(160).fill(0);
    hist[bucketOf(1000)] = 98;
    hist[bucketOf(80_000_000)] = 2; // 2 % are 80 ms
    expect(histQuantile(hist, 0.5)).toBe(bucketBounds(bucketOf(1000))[1]);
    expect(histQuantile(hist, 0.99)).toBe(bucketBounds(bucketOf(80_000_000))[1]);
    expect(histQuantile(new Array<number>(160).fill(0), 0.99)).toBeNull();
  });

  it('sums a histogram within 12.5 %: 2 stalls of 80 ms outweigh 98 waits of 1 us, which a p99 misses', () => {
    const hist = new Array<number>(160).fill(0);
    hist[bucketOf(1000)] = 98;
    hist[bucketOf(80_000_000)] = 2;
    const exact = 98 * 1000 + 2 * 80_000_000;
    expect(Math.abs(histSum(hist) - exact) / exact).toBeLessThan(0.125);
    expect(histQuantile(hist, 0.98)).toBeLessThan(2000);
    expect(histSum(new Array<number>(160).fill(0))).toBe(0);
  });

  it('names errnos as the OS does', () => {
    expect(errnoName(111)).toBe('ECONNREFUSED');
    expect(errnoName(1)).toBe('EPERM');
    expect(errnoName(999)).toBe('errno 999');
  });
});

describe('kernelChanges', () => {
  const kernel = {
    baseline: { db: quiet(), api: quiet() },
    observe: {
      db: quiet({
        durationMs: 5000,
        runqueueDelayP99Us: 90_000,
        processExits: [{ comm: 'postgres', pid: 7, signal: 'SIGKILL', exitCode: null }],
      }),
      api: quiet({ durationMs: 5000, tcpRetransmits: 400, connectAttempts: 25, connectErrors: { ECONNREFUSED: 12 } }),
    },
    recovery: { db: quiet(), api: quiet() },
  };

  it('ranks what changed most against the baseline first, rates compared over their own durations', () => {
    const changes = kernelChanges(kernel, 10);
    expect(changes[0]?.metric).toBe('runqueueDelayP99Us');
    expect(changes.map((c) => `${c.target}.${c.metric}`)).toEqual(
      expect.arrayContaining(['db.processExits', 'api.tcpRetransmits', 'api.connectErrors']),
    );
    // 10 connects in 2 s and 25 in 5 s are the same rate: not a change.
    expect(changes.find((c) => c.target === 'api' && c.metric === 'connectAttempts')).toBeUndefined();
    expect(changes.find((c) => c.metric === 'processExits')?.text).toBe('db processExits postgres(7) SIGKILL (observe)');
    expect(changes.find((c) => c.metric === 'connectErrors')?.text).toBe(
      'api connectErrors 0 in 2.0 s -> 12 in 5.0 s (ECONNREFUSED 12) (observe)',
    );
    expect(changes.every((c) => c.phase === 'observe')).toBe(true); // recovery is like the baseline
  });

  it('ranks little block I/O and a p99 without baseline samples below real changes', () => {
    const noisy = {
      baseline: { api: quiet({ tcpRttP99Us: null }) },
      observe: { api: quiet({ durationMs: 5000, blockIoBytes: 417_792, tcpRttP99Us: 24_576, tcpRetransmits: 200 }) },
    };
    const changes = kernelChanges(noisy, 10);
    expect(changes[0]?.metric).toBe('tcpRetransmits');
    expect(changes.find((c) => c.metric === 'blockIoBytes')).toBeUndefined(); // 80 KiB/s
    expect(changes.find((c) => c.metric === 'tcpRttP99Us')?.score).toBe(1);
  });

  it('is empty without a baseline', () => {
    expect(kernelChanges({ observe: kernel.observe })).toEqual([]);
    expect(kernelChanges(undefined)).toEqual([]);
  });

  it('reaches the reporter table', () => {
    const r = {
      name: 'db dies',
      verdict: 'validated',
      breaches: [],
      rollbackMs: null,
      recoveryMs: 100,
      faults: [],
      seed: 1,
      kernel,
    } as unknown as ExperimentResult;
    const table = formatTable([{ test: 't', file: 'f', result: r }]);
    expect(table).toContain('what the kernel saw change most against the baseline');
    expect(table).toContain('db dies: db runqueueDelayP99Us 100 -> 90000 us (observe)');
  });
});

describe('parseConnections (ss in the target netns)', () => {
  it('reads addresses, cookies, and which connections the target accepted', async () => {
    const { parseConnections } = await import('../../src/targets/target-sockets.js');
    const established = [
      '0      0      172.17.0.5:5432   172.17.0.1:41458 ino:669023 sk:5aba cgroup:/ <->',
      '0      0      172.17.0.5:39000  172.17.0.9:6379  timer:(keepalive,59sec,0) ino:1 sk:1f cgroup:/ <->',
      '0      0      [::ffff:172.17.0.5]:5432 [::ffff:172.17.0.7]:5000 ino:2 sk:20 <->',
      '0      0      [::1]:5432 [::1]:5001 ino:3 sk:21 <->',
    ].join('\n');
    const listening = 'LISTEN 0      244          0.0.0.0:5432      0.0.0.0:*\nLISTEN 0 244 [::]:5432 [::]:*';
    expect(parseConnections(established, listening)).toEqual([
      { localAddress: '172.17.0.5', localPort: 5432, remoteAddress: '172.17.0.1', remotePort: 41458, inbound: true, cookie: 0x5aban },
      { localAddress: '172.17.0.5', localPort: 39000, remoteAddress: '172.17.0.9', remotePort: 6379, inbound: false, cookie: 0x1fn },
      { localAddress: '172.17.0.5', localPort: 5432, remoteAddress: '172.17.0.7', remotePort: 5000, inbound: true, cookie: 0x20n },
    ]);
  });
});

describe('the HTML report', () => {
  it('shows what the kernel saw change most, and every observation', async () => {
    const { renderHtmlReport } = await import('../../src/report/html-report.js');
    const base = {
      name: 'db dies',
      hypothesis: 'h',
      verdict: 'validated',
      reason: 'ok',
      seed: 1,
      startedAt: '2026-12-01T00:00:00.000Z',
      durationMs: 5000,
      windowMs: 1000,
      slos: {},
      phases: { baseline: null, observe: null, recovery: null },
      breaches: [],
      rollbackMs: null,
      recoveryMs: 10,
      recovered: true,
      faults: [],
      load: null,
      timeline: [],
    };
    const kernel = {
      baseline: { db: quiet() },
      observe: { db: quiet({ processExits: [{ comm: 'postgres', pid: 7, signal: 'SIGKILL', exitCode: null }] }) },
    };
    const html = renderHtmlReport([{ test: 't', file: 'f', result: { ...base, kernel } as unknown as ExperimentResult }]);
    expect(html).toContain('changed most against the baseline');
    expect(html).toContain('processExits postgres(7) SIGKILL');
    const without = renderHtmlReport([
      { test: 't', file: 'f', result: { ...base, kernelError: 'kernel observers did not start: EPERM' } as unknown as ExperimentResult },
    ]);
    expect(without).toContain('kernel observers did not start: EPERM');
  });
});
