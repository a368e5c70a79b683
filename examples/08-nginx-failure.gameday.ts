// 08 nginx failure: the front is stopped for 3 s, then started again.
// Hypothesis: users lose the front, not the service: the API behind it stays up (its
// /health, called directly, answers throughout), and the front answers again within 2 s of
// nginx's start, on the same address (container-stop keeps the host port, so the URL the
// test took from getMappedPort() before the fault is still the right one).
// SLOs: availability of the API itself (probe) >= 99%; recovery: the front's first answer
// within 2 s of the start.
import Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { faultWindow, kernelFacts, kernelOf, report, summarize } from './trading/findings.js';
import { orderLoad } from './trading/order-flow.js';
import { tradingStackPerFile } from './trading/per-file.js';

describe('08 nginx failure', () => {
  const file = tradingStackPerFile();

  it('the front is down, the API stays up; the front is back on the same port within 2 s', async () => {
    const { stack, flow } = file;
    const portBefore = stack.nginx.getMappedPort(80);
    const apiUrl = await stack.apiUrl();
    const result = await chaos.experiment({
      name: '08 nginx failure',
      hypothesis:
        'Given 40 req/s through nginx, when nginx is down for 3 s, the API itself stays available (>= 99%) and the front answers again within 2 s of its start, on the same port',
      severity: 'high',
      steadyState: {
        load: orderLoad(flow),
        probes: [{ name: 'api /health (direct)', http: { url: `${apiUrl}/health` }, intervalMs: 100 }],
        slos: { availability: { min: 0.99 } },
        windowMs: 1000,
      },
      baselineMs: 1500,
      faults: [{ kind: 'container-stop', target: stack.nginx, timeoutSec: 1 }],
      observe: [stack.api],
      durationMs: 3000,
      recovery: { withinMs: 2000 },
    });
    const { from, to } = faultWindow(result);
    const front = summarize(flow.between(from + 300, to - 1000)); // `to` is after the start and its wait
    const back = flow.firstSuccessAfter(to);
    const portAfter = (await new Docker().getContainer(stack.nginx.getId()).inspect()).NetworkSettings.Ports['80/tcp']?.find(
      (b) => b.HostIp === '0.0.0.0',
    )?.HostPort;
    report('08 nginx failure', {
      verdict: result.verdict,
      stop: result.faults[0]?.stats,
      frontWhileDown: front,
      apiAvailability: result.phases.observe?.availability,
      frontBackAfterStartMs: back ? back.at + back.ms - to : null,
      hostPort: { before: portBefore, after: portAfter },
      ...kernelFacts(result, [stack.names.nginx, stack.names.api]),
    });

    // The front was down: requests through nginx found nobody listening.
    expect(front.n).toBeGreaterThan(30);
    expect(front.errorRate).toBeGreaterThan(0.9);
    // The API behind it was up all along.
    expect(result).toHoldSteadyState();
    // The front came back on the same host port, within 2 s of the start.
    expect(Number(portAfter)).toBe(portBefore);
    expect(stack.nginx.getMappedPort(80)).toBe(portBefore);
    expect(back).toBeDefined();
    expect(back!.at + back!.ms - to).toBeLessThan(2000);
    const r = await fetch(`${stack.url}/quote/ACME`);
    expect(r.status).toBe(200);
    // What the kernel saw: nginx's master and workers exited (none in the baseline), and the
    // API behind it did not.
    expect(kernelOf(result, 'baseline', stack.names.nginx).processExits).toEqual([]);
    const nginx = kernelOf(result, 'observe', stack.names.nginx);
    expect(nginx.processExits.filter((e) => e.comm === 'nginx').length).toBeGreaterThanOrEqual(2);
    expect(kernelOf(result, 'observe', stack.names.api).processExits).toEqual([]);
  });
});
