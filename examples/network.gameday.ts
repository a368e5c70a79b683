// Game day: how does the API behave when its backend link degrades?
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { callApi, startDemoSystem, type DemoSystem } from './demo-system.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

describe('game day: the API and its backend', () => {
  let demo: DemoSystem;
  beforeAll(async () => {
    demo = await startDemoSystem();
    await callApi(demo.url, 5); // warm up
  });
  afterAll(() => demo?.stop());

  it('absorbs 100 ms of latency towards the backend', async ({ annotate }) => {
    const base = median((await callApi(demo.url, 20)).map((r) => r.ms));
    await chaos.inject({ kind: 'network-latency', target: demo.api, peer: demo.backend, latencyMs: 100 });
    const calls = await callApi(demo.url, 20);
    const slow = median(calls.map((r) => r.ms));
    await annotate(`median ${base.toFixed(1)} ms -> ${slow.toFixed(1)} ms with 100 ms injected`);
    expect(calls.every((c) => c.status === 200)).toBe(true);
    expect(slow - base).toBeGreaterThan(90);
  });

  it('fails fast (502) when the backend is partitioned with reject', async ({ annotate }) => {
    await chaos.inject({ kind: 'network-partition', target: demo.api, peer: demo.backend, mode: 'reject' });
    const calls = await callApi(demo.url, 10);
    await annotate(`statuses ${[...new Set(calls.map((c) => c.status))].join(',')}, median ${median(calls.map((c) => c.ms)).toFixed(1)} ms`);
    expect(calls.every((c) => c.status === 502)).toBe(true);
    expect(median(calls.map((c) => c.ms))).toBeLessThan(200);
  });

  it('times out (502 after its 1 s budget) when the backend silently drops', async () => {
    await chaos.inject({ kind: 'network-partition', target: demo.api, peer: demo.backend, mode: 'drop' });
    const calls = await callApi(demo.url, 3);
    expect(calls.every((c) => c.status === 502 && c.ms >= 950)).toBe(true);
  });

  it('is healthy again once the faults are gone', async () => {
    const calls = await callApi(demo.url, 10);
    expect(calls.every((c) => c.status === 200)).toBe(true);
  });
});
