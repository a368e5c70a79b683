// Throughput measured by the receiver: the host downloading from the target
// (the target's egress, in steady state) and the target downloading from
// another container (its ingress, as its proxy route times the fetch). tc
// counts Ethernet frames, so TCP goodput sits about 4% under the configured
// rate (1448 payload bytes in a 1514-byte frame); "within 10%" holds for both.
import type { StartedTestContainer } from 'testcontainers';
import { beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { ipOf, startHttpServer } from '../helpers/containers.js';
import { faultContract } from '../helpers/fault-contract.js';
import { bestOf2, downloadRate, ingressRate } from '../helpers/throughput.js';
import { rootQdisc, vethOf } from '../helpers/veth.js';

const R = 500_000; // 4mbit in bytes/s
// Unshaped: far less than a veth carries (60-200 MB/s here, 15 MB/s and more
// through the fixture's fetch-based proxy on 2 busy cores).
const FULL = 5 * R;
const mb = (x: number) => `${(x / 1e6).toFixed(3)} MB/s`;

/** The root qdiscs a fault would change: the host side of the veth (ingress) and the container's eth0 (egress). */
async function qdiscsOf(c: StartedTestContainer): Promise<{ ingress: string; egress: string }> {
  const v = await vethOf(c);
  return { ingress: rootQdisc(v.hostIfname), egress: rootQdisc(v.ifname, v.pid) };
}

describe('network-bandwidth', () => {
  const env = faultContract({
    kind: 'network-bandwidth',
    start: (name) => startHttpServer(name),
    params: () => ({ rate: '4mbit', direction: 'egress' }),
    measure: (c) => downloadRate(ipOf(c), R),
    affected: (rate) => {
      expect(rate).toBeGreaterThan(0.9 * R);
      // HTB lets its burst through at the start of each transfer: a short measurement reads a little over the rate.
      expect(rate).toBeLessThan(1.15 * R);
    },
    normal: (rate) => expect(rate).toBeGreaterThan(FULL),
    counts: (s) => {
      expect(s.rateBytesPerSec).toBe(R);
      expect(s.egressBytes).toBeGreaterThan(R);
    },
    applied: qdiscsOf,
    host: () => rootQdisc('docker0'),
    bad: [
      ['a rate in furlongs', { rate: '1 furlong' }, /rate is "1 furlong"; expected a rate from 1kbit to 100gbit/],
      ['rate 0', { rate: 0 }, /rate is 0; expected a rate from 1kbit to 100gbit/],
      ['a rate without a unit', { rate: '1000' }, /rate is "1000"; expected a rate from 1kbit to 100gbit: bytes per second as a number/],
      ['direction up', { rate: '1mbit', direction: 'up' }, /direction is "up"; expected one of "egress", "ingress", "both"/],
      ['percent', { rate: '1mbit', percent: 5 }, /percent is 5; expected no such field/],
      ['no rate', {}, /rate is missing; expected a rate/],
    ],
    // tc qdiscs outlive the process: the journal entries written first let the next run remove them.
    sigkill: 'reaped by the next run',
  });
  const shaped = () => qdiscsOf(env.target);
  const NONE = { ingress: 'noqueue 0:', egress: 'noqueue 0:' };
  beforeAll(async () => {
    // The proxy's first fetch loads its HTTP client: hundreds of ms that are not the network's.
    await ingressRate(ipOf(env.target), ipOf(env.control), 100_000);
  });

  it('caps what the target sends (egress) within 10 percent, and not what it receives', async () => {
    expect(await shaped()).toEqual(NONE);
    const fault = await chaos.inject({ kind: 'network-bandwidth', target: env.target, rate: '4mbit', direction: 'egress' });
    expect(await shaped()).toEqual({ ingress: 'noqueue 0:', egress: 'htb 7c5d:' });
    const down = await bestOf2(
      () => downloadRate(ipOf(env.target), 2 * R),
      (r) => expect(r).toBeLessThan(1.1 * R),
    );
    const up = await ingressRate(ipOf(env.target), ipOf(env.control), 2 * R);
    const s = fault.stats();
    await fault.revert();
    console.info(`bandwidth egress 4mbit: download ${mb(down)}, ingress ${mb(up)}`);
    expect(down).toBeGreaterThan(0.9 * R);
    expect(up).toBeGreaterThan(FULL);
    expect(s.rateBytesPerSec).toBe(R);
    expect(s.egressBytes).toBeGreaterThan(2 * R);
    expect(s.ingressBytes).toBeUndefined();
  });

  it('caps what the target receives (ingress), given in bytes per second', async () => {
    const rate = 250_000;
    const fault = await chaos.inject({ kind: 'network-bandwidth', target: env.target, rate, direction: 'ingress' });
    expect(await shaped()).toEqual({ ingress: 'htb 7c5d:', egress: 'noqueue 0:' });
    const up = await bestOf2(
      () => ingressRate(ipOf(env.target), ipOf(env.control), 2 * rate),
      (r) => expect(r).toBeLessThan(1.1 * rate),
    );
    const down = await downloadRate(ipOf(env.target), 2 * R);
    await fault.revert();
    const after = await ingressRate(ipOf(env.target), ipOf(env.control), 2 * R);
    console.info(`bandwidth ingress 250000 B/s: ingress ${mb(up)}, download ${mb(down)}, after revert ${mb(after)}`);
    expect(up).toBeGreaterThan(0.9 * rate);
    expect(down).toBeGreaterThan(FULL);
    expect(after).toBeGreaterThan(FULL);
    expect(await shaped()).toEqual(NONE);
  });

  it("caps both ways by default; 'mbps' is megaBYTES per second, as in tc", async () => {
    const rate = 1_000_000;
    const fault = await chaos.inject({ kind: 'network-bandwidth', target: env.target, rate: '1mbps' });
    expect(fault.stats().rateBytesPerSec).toBe(rate);
    const under = (r: number) => expect(r).toBeLessThan(1.1 * rate);
    const down = await bestOf2(() => downloadRate(ipOf(env.target), 2 * rate), under);
    const up = await bestOf2(() => ingressRate(ipOf(env.target), ipOf(env.control), 2 * rate), under);
    await fault.revert();
    console.info(`bandwidth both 1mbps: download ${mb(down)}, ingress ${mb(up)}`);
    for (const r of [down, up]) expect(r).toBeGreaterThan(0.9 * rate);
    expect(await shaped()).toEqual(NONE);
  });

  it('stacks: the strictest rate is in force, the next one comes back when it is reverted', async () => {
    const a = await chaos.inject({ kind: 'network-bandwidth', target: env.target, rate: '4mbit', direction: 'egress' });
    const b = await chaos.inject({ kind: 'network-bandwidth', target: env.target, rate: '2mbit', direction: 'egress' });
    const both = await downloadRate(ipOf(env.target), R);
    await b.revert();
    await b.revert();
    const first = await downloadRate(ipOf(env.target), 2 * R);
    await a.revert();
    await a.revert();
    const none = await downloadRate(ipOf(env.target), 2 * R);
    console.info(`bandwidth stacked: 4mbit+2mbit ${mb(both)}, 4mbit ${mb(first)}, none ${mb(none)}`);
    expect(both).toBeGreaterThan(0.9 * (R / 2));
    expect(both).toBeLessThan(1.1 * (R / 2));
    expect(first).toBeGreaterThan(0.9 * R);
    expect(first).toBeLessThan(1.1 * R);
    expect(none).toBeGreaterThan(FULL);
    expect(await shaped()).toEqual(NONE);
  });
});
