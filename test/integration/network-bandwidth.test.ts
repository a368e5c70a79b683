// Throughput measured by the receiver: the host downloading from the target
// (the target's egress, in steady state) and the target downloading from
// another container (its ingress, as its proxy route times the fetch). tc
// counts Ethernet frames, so TCP goodput sits about 4% under the configured
// rate (1448 payload bytes in a 1514-byte frame); "within 10%" holds for both.
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos, ChaosSpecError } from 'vitest-chaos';
import { Journal } from '../../src/journal/journal.js';
import { ipOf, startHttpServer, stopAll } from '../helpers/containers.js';
import { sigkill, startInjector } from '../helpers/datapath.js';
import { downloadRate, ingressRate } from '../helpers/throughput.js';
import { rootQdisc, vethOf } from '../helpers/veth.js';

const R = 500_000; // 4mbit in bytes/s
// Unshaped: far less than a veth carries (60-200 MB/s here, 15 MB/s and more
// through the fixture's fetch-based proxy on 2 busy cores).
const FULL = 5 * R;
const mb = (x: number) => `${(x / 1e6).toFixed(3)} MB/s`;

describe('network-bandwidth', () => {
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  let veth: Awaited<ReturnType<typeof vethOf>>;
  let controlVeth: Awaited<ReturnType<typeof vethOf>>;
  const hostQdiscs = () => ['docker0', controlVeth.hostIfname].map((d) => rootQdisc(d)).concat(rootQdisc('eth0', controlVeth.pid));
  let hostBefore: string[];
  const shaped = () => ({ ingress: rootQdisc(veth.hostIfname), egress: rootQdisc(veth.ifname, veth.pid) });
  const NONE = { ingress: 'noqueue 0:', egress: 'noqueue 0:' };

  beforeAll(async () => {
    [target, control] = await Promise.all([startHttpServer('bw-target'), startHttpServer('bw-control')]);
    [veth, controlVeth] = await Promise.all([vethOf(target), vethOf(control)]);
    hostBefore = hostQdiscs();
    // The proxy's first fetch loads its HTTP client: hundreds of ms that are not the network's.
    await ingressRate(ipOf(target), ipOf(control), 100_000);
  });
  afterAll(() => stopAll(target, control));

  it('caps what the target sends (egress) within 10 percent, and not what it receives', async () => {
    expect(shaped()).toEqual(NONE);
    const fault = await chaos.inject({ kind: 'network-bandwidth', target, rate: '4mbit', direction: 'egress' });
    expect(shaped()).toEqual({ ingress: 'noqueue 0:', egress: 'htb 7c5d:' });
    const down = await downloadRate(ipOf(target), 2 * R);
    const up = await ingressRate(ipOf(target), ipOf(control), 2 * R);
    const controlDown = await downloadRate(ipOf(control), 2 * R);
    const s = fault.stats();
    await fault.revert();
    const after = await downloadRate(ipOf(target), 2 * R);
    console.info(`bandwidth egress 4mbit: download ${mb(down)}, ingress ${mb(up)}, control ${mb(controlDown)}, after revert ${mb(after)}`);
    expect(down).toBeGreaterThan(0.9 * R);
    expect(down).toBeLessThan(1.1 * R);
    expect(up).toBeGreaterThan(FULL);
    expect(controlDown).toBeGreaterThan(FULL);
    expect(s.rateBytesPerSec).toBe(R);
    expect(s.egressBytes).toBeGreaterThan(2 * R);
    expect(s.ingressBytes).toBeUndefined();
    expect(after).toBeGreaterThan(FULL);
    expect(shaped()).toEqual(NONE);
    expect(hostQdiscs()).toEqual(hostBefore);
  });

  it('caps what the target receives (ingress), given in bytes per second', async () => {
    const rate = 250_000;
    const fault = await chaos.inject({ kind: 'network-bandwidth', target, rate, direction: 'ingress' });
    expect(shaped()).toEqual({ ingress: 'htb 7c5d:', egress: 'noqueue 0:' });
    const up = await ingressRate(ipOf(target), ipOf(control), 2 * rate);
    const down = await downloadRate(ipOf(target), 2 * R);
    await fault.revert();
    const after = await ingressRate(ipOf(target), ipOf(control), 2 * R);
    console.info(`bandwidth ingress 250000 B/s: ingress ${mb(up)}, download ${mb(down)}, after revert ${mb(after)}`);
    expect(up).toBeGreaterThan(0.9 * rate);
    expect(up).toBeLessThan(1.1 * rate);
    expect(down).toBeGreaterThan(FULL);
    expect(after).toBeGreaterThan(FULL);
    expect(shaped()).toEqual(NONE);
  });

  it("caps both ways by default; 'mbps' is megaBYTES per second, as in tc", async () => {
    const rate = 1_000_000;
    const fault = await chaos.inject({ kind: 'network-bandwidth', target, rate: '1mbps' });
    expect(fault.stats().rateBytesPerSec).toBe(rate);
    const down = await downloadRate(ipOf(target), 2 * rate);
    const up = await ingressRate(ipOf(target), ipOf(control), 2 * rate);
    await fault.revert();
    console.info(`bandwidth both 1mbps: download ${mb(down)}, ingress ${mb(up)}`);
    for (const r of [down, up]) {
      expect(r).toBeGreaterThan(0.9 * rate);
      expect(r).toBeLessThan(1.1 * rate);
    }
    expect(shaped()).toEqual(NONE);
    expect(hostQdiscs()).toEqual(hostBefore);
  });

  it('stacks: the strictest rate is in force, the next one comes back when it is reverted', async () => {
    const a = await chaos.inject({ kind: 'network-bandwidth', target, rate: '4mbit', direction: 'egress' });
    const b = await chaos.inject({ kind: 'network-bandwidth', target, rate: '2mbit', direction: 'egress' });
    const both = await downloadRate(ipOf(target), R);
    await b.revert();
    await b.revert();
    const first = await downloadRate(ipOf(target), 2 * R);
    await a.revert();
    await a.revert();
    const none = await downloadRate(ipOf(target), 2 * R);
    console.info(`bandwidth stacked: 4mbit+2mbit ${mb(both)}, 4mbit ${mb(first)}, none ${mb(none)}`);
    expect(both).toBeGreaterThan(0.9 * (R / 2));
    expect(both).toBeLessThan(1.1 * (R / 2));
    expect(first).toBeGreaterThan(0.9 * R);
    expect(first).toBeLessThan(1.1 * R);
    expect(none).toBeGreaterThan(FULL);
    expect(shaped()).toEqual(NONE);
  });

  it.each([
    [{ rate: '1 furlong' }, /rate is "1 furlong"; expected a rate from 1kbit to 100gbit/],
    [{ rate: 0 }, /rate is 0; expected a rate from 1kbit to 100gbit/],
    [{ rate: '1000' }, /rate is "1000"; expected a rate from 1kbit to 100gbit: bytes per second as a number/],
    [{ rate: '1mbit', direction: 'up' }, /direction is "up"; expected one of "egress", "ingress", "both"/],
    [{ rate: '1mbit', percent: 5 }, /percent is 5; expected no such field/],
    [{}, /rate is missing; expected a rate/],
  ])('refuses %j with a clear error and changes nothing', async (params, message) => {
    const err = await chaos.inject({ kind: 'network-bandwidth', target, ...params } as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChaosSpecError);
    expect((err as Error).message).toMatch(message);
    expect(shaped()).toEqual(NONE);
    expect(chaos.activeFaults()).toEqual([]);
  });

  it('reverts quietly after the target is gone, and leaves no journal entry', async () => {
    const doomed = await startHttpServer('bw-doomed');
    const name = doomed.getName().replace(/^\//, '');
    const f = await chaos.inject({ kind: 'network-bandwidth', target: doomed, rate: '1mbit' });
    const ours = () => new Journal().entries().filter((e) => e.pid === process.pid && e.description.includes(` on ${name}:`));
    expect(ours()).toHaveLength(2);
    await doomed.stop({ timeout: 0 });
    await expect(f.revert()).resolves.toBeUndefined();
    await expect(f.revert()).resolves.toBeUndefined();
    expect(ours()).toEqual([]);
  });

  it('a process killed with SIGKILL leaves the qdiscs until the reaper removes them', async () => {
    const child = await startInjector('network-bandwidth', target, { rate: '4mbit' });
    expect(shaped()).toEqual({ ingress: 'htb 7c5d:', egress: 'htb 7c5d:' });
    await sigkill(child);
    // Nothing undid it: the qdiscs outlive the process.
    expect(shaped()).toEqual({ ingress: 'htb 7c5d:', egress: 'htb 7c5d:' });
    const still = await downloadRate(ipOf(target), R);
    const { reverted } = await new Journal().reap();
    const name = target.getName().replace(/^\//, '');
    expect(reverted.filter((e) => e.pid === child.pid && e.description.includes(` on ${name}:`))).toHaveLength(2);
    const after = await downloadRate(ipOf(target), 2 * R);
    console.info(`bandwidth after SIGKILL: ${mb(still)} until reaped, then ${mb(after)}`);
    expect(still).toBeLessThan(1.1 * R);
    expect(after).toBeGreaterThan(FULL);
    expect(shaped()).toEqual(NONE);
    expect(hostQdiscs()).toEqual(hostBefore);
  });
});
