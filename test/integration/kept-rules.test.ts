// The packet path's kept rules (src/targets/queue-slots.ts): a target's netns
// keeps one NFQUEUE rule per fault slot, matching with an eBPF program that
// reads the fault from maps, so that inject and revert make no iptables commit.
// Measured on real containers from the test process: the delay in force and
// gone, the control untouched, the rules made once and reused, the newest of
// overlapping faults in force, 64 at once on one target, the rules and their
// journal record gone when the netns is idle.
import Docker from 'dockerode';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chaos } from 'vitest-chaos';
import { sandboxOf } from '../../src/targets/queue-rules.js';
import { releaseIdleQueueSlots, targetTcpTable } from '../../src/targets/queue-slots.js';
import { tcpTableOf } from '../../src/targets/tcp-table.js';
import { ipOf, startHttpServer, stopAll } from '../helpers/containers.js';
import { ourChainsOf } from '../helpers/datapath.js';
import { journalOf } from '../helpers/fault-contract.js';
import { median } from '../helpers/stats.js';

/** Request times (ms) on one kept-alive connection from the test process. */
async function times(agent: http.Agent, ip: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      http
        .get({ host: ip, port: 8080, path: '/', agent }, (res) => {
          res.resume();
          res.on('end', resolve);
        })
        .on('error', reject);
    });
    out.push(performance.now() - t0);
  }
  return out;
}

/** The NFQUEUE rules of the kept OUTPUT chain in the container's netns (IPv4 tables). */
async function keptRules(c: StartedTestContainer): Promise<string[]> {
  const docker = new Docker();
  const info = await docker.getContainer(c.getId()).inspect();
  const netns = await sandboxOf(docker, c.getId(), info.State.Pid);
  if (!netns) throw new Error(`${c.getName()} has no netns`);
  try {
    const out = execFileSync('nsenter', [`--net=${netns}`, '--', 'iptables', '-w', '5', '-t', 'mangle', '-S', 'VC-S-O'], {
      encoding: 'utf8',
    });
    return out.split('\n').filter((l) => l.includes('NFQUEUE'));
  } catch {
    return [];
  }
}

describe('the packet path keeps its rules per netns: inject and revert are map updates', () => {
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const onTarget = (n = 5) => times(agent, ipOf(target), n).then(median);
  const onControl = (n = 5) => times(agent, ipOf(control), n).then(median);
  beforeAll(async () => {
    [target, control] = await Promise.all([startHttpServer('kept-target'), startHttpServer('kept-control')]);
    await onTarget(3);
    await onControl(3);
  });
  afterAll(async () => {
    agent.destroy();
    await stopAll(target, control);
  });

  it('a second fault on the target reuses the rule the first made; each is in force, and gone at its revert', async () => {
    await releaseIdleQueueSlots();
    const base = await onTarget();
    const ctlBase = await onControl();
    const first = await chaos.inject({ kind: 'network-latency', target, latencyMs: 60 });
    const during1 = await onTarget();
    const rules1 = await keptRules(target);
    await first.revert();
    const between = await onTarget();
    const second = await chaos.inject({ kind: 'network-latency', target, latencyMs: 120 });
    const during2 = await onTarget();
    const ctlDuring = await onControl();
    const rules2 = await keptRules(target);
    const s2 = second.stats();
    await second.revert();
    const after = await onTarget();
    console.info(
      `kept rules: ${base.toFixed(1)} -> 60: ${during1.toFixed(1)} -> ${between.toFixed(1)} -> 120: ${during2.toFixed(1)} -> ${after.toFixed(1)} ms; ` +
        `control ${ctlBase.toFixed(1)} -> ${ctlDuring.toFixed(1)}; rules ${rules1.length} then ${rules2.length}; ${JSON.stringify(s2)}`,
    );
    expect(during1 - base).toBeGreaterThanOrEqual(57);
    expect(during1 - base).toBeLessThan(80);
    expect(between - base).toBeLessThan(10);
    expect(during2 - base).toBeGreaterThanOrEqual(117);
    expect(during2 - base).toBeLessThan(140);
    expect(after - base).toBeLessThan(10);
    expect(ctlDuring - ctlBase).toBeLessThan(10);
    expect(rules1).toHaveLength(1);
    expect(rules2).toEqual(rules1);
    // The reader was reset for the second fault: its counts are its own (5 requests, one connection).
    expect(s2.connectionsMatched).toBe(1);
    expect(s2.packetsDelayed).toBeGreaterThanOrEqual(5);
    expect(s2.packetsDelayed).toBeLessThan(20);
  });

  it('of two overlapping faults the newest is in force; reverting it puts the older back', async () => {
    const base = await onTarget();
    const older = await chaos.inject({ kind: 'network-latency', target, latencyMs: 50 });
    const newer = await chaos.inject({ kind: 'network-latency', target, latencyMs: 150 });
    const both = await onTarget();
    const rules = await keptRules(target);
    await newer.revert();
    const olderOnly = await onTarget();
    await older.revert();
    const none = await onTarget();
    console.info(
      `overlap: ${base.toFixed(1)} -> 50+150: ${both.toFixed(1)} -> 50: ${olderOnly.toFixed(1)} -> ${none.toFixed(1)} ms; rules ${rules.length}`,
    );
    expect(both - base).toBeGreaterThanOrEqual(147);
    expect(both - base).toBeLessThan(175);
    expect(olderOnly - base).toBeGreaterThanOrEqual(47);
    expect(olderOnly - base).toBeLessThan(75);
    expect(none - base).toBeLessThan(10);
    expect(rules).toHaveLength(2);
  });

  it("the newest is in force even when it reuses a slot whose rule is below an older fault's", async () => {
    const base = await onTarget();
    const x = await chaos.inject({ kind: 'network-latency', target, latencyMs: 30 });
    const y = await chaos.inject({ kind: 'network-latency', target, latencyMs: 60 });
    await x.revert();
    // x's slot is free again, its rule below y's: z takes it, and still gets the packets first.
    const z = await chaos.inject({ kind: 'network-latency', target, latencyMs: 120 });
    const withZ = await onTarget();
    const zStats = z.stats();
    const yStats = y.stats();
    await z.revert();
    const yOnly = await onTarget();
    await y.revert();
    const none = await onTarget();
    console.info(
      `reused lower slot: ${base.toFixed(1)} -> y 60 + z 120: ${withZ.toFixed(1)} -> y: ${yOnly.toFixed(1)} -> ${none.toFixed(1)} ms; ` +
        `z delayed ${zStats.packetsDelayed}, y meanwhile ${yStats.packetsDelayed}; rules ${(await keptRules(target)).length}`,
    );
    expect(withZ - base).toBeGreaterThanOrEqual(117);
    expect(withZ - base).toBeLessThan(145);
    expect(zStats.packetsDelayed).toBeGreaterThanOrEqual(5);
    expect(yStats.packetsDelayed).toBe(0);
    expect(yOnly - base).toBeGreaterThanOrEqual(57);
    expect(yOnly - base).toBeLessThan(85);
    expect(none - base).toBeLessThan(10);
  });

  it('holds 64 faults on one target at once; each counts what it matched', async () => {
    const base = await onTarget();
    const faults = [];
    const t0 = performance.now();
    // 63 on ports the target does not use, then one on its own port 8080 (the newest).
    for (let i = 0; i < 63; i++) faults.push(await chaos.inject({ kind: 'network-latency', target, latencyMs: 30, port: 20_000 + i }));
    const hit = await chaos.inject({ kind: 'network-latency', target, latencyMs: 80, port: 8080, connections: 'inbound' });
    const injectMs = performance.now() - t0;
    const during = await onTarget();
    const rules = await keptRules(target);
    const unmatched = faults.filter((f) => f.stats().packetsQueued === 0).length;
    const hitStats = hit.stats();
    const t1 = performance.now();
    await hit.revert();
    for (const f of faults) await f.revert();
    const revertMs = performance.now() - t1;
    const after = await onTarget();
    // Faults that matched nothing are warned about at revert: expected here.
    console.info(
      `64 faults: injected in ${injectMs.toFixed(0)} ms, reverted in ${revertMs.toFixed(0)} ms; ${base.toFixed(1)} -> ${during.toFixed(1)} -> ${after.toFixed(1)} ms; ` +
        `rules ${rules.length}, ${unmatched} of 63 matched no packet; on 8080 ${hitStats.packetsDelayed} delayed`,
    );
    expect(rules.length).toBeGreaterThanOrEqual(64);
    expect(during - base).toBeGreaterThanOrEqual(77);
    expect(during - base).toBeLessThan(105);
    expect(unmatched).toBe(63);
    expect(hitStats.packetsDelayed).toBeGreaterThanOrEqual(5);
    expect(after - base).toBeLessThan(10);
  });

  it('a port the target starts listening on after the inject is inbound too (learned from the SYN it receives)', async () => {
    const f = await chaos.inject({ kind: 'network-latency', target, latencyMs: 80, connections: 'inbound' });
    try {
      // A second server in the target, started after the inject: its port was not listening then.
      const started = await target.exec([
        'sh',
        '-c',
        `nohup node -e "require('http').createServer((q, s) => s.end('late')).listen(7070)" >/dev/null 2>&1 & echo $! > /tmp/late.pid
         for i in $(seq 50); do node -e "require('net').connect(7070, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))" && exit 0; sleep 0.1; done; exit 1`,
      ]);
      expect(started.exitCode).toBe(0);
      const late = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const lateTimes = async (n: number) => {
        const out: number[] = [];
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          await new Promise<void>((resolve, reject) => {
            http
              .get({ host: ipOf(target), port: 7070, path: '/', agent: late }, (res) => {
                res.resume();
                res.on('end', resolve);
              })
              .on('error', reject);
          });
          out.push(performance.now() - t0);
        }
        return out;
      };
      const onLate = await lateTimes(6);
      const onOld = await onTarget();
      // What the target opens is outbound: not delayed (connections: 'inbound').
      const out = await target.exec([
        'node',
        '-e',
        `const t = performance.now(); require('http').get('http://${ipOf(control)}:8080/', (r) => { r.resume(); r.on('end', () => console.log(performance.now() - t)); })`,
      ]);
      const outMs = Number(out.output.trim());
      late.destroy();
      console.info(
        `late listener: first ${onLate[0]?.toFixed(1)} ms, then median ${median(onLate.slice(1)).toFixed(1)} ms; ` +
          `8080 ${onOld.toFixed(1)} ms; the target's own request out ${outMs.toFixed(1)} ms; ${JSON.stringify(f.stats())}`,
      );
      expect(Math.min(...onLate.slice(1))).toBeGreaterThanOrEqual(78);
      expect(median(onLate.slice(1))).toBeLessThan(110);
      expect(onOld).toBeGreaterThanOrEqual(78);
      expect(outMs).toBeLessThan(40);
    } finally {
      await f.revert();
      await target.exec(['sh', '-c', 'kill $(cat /tmp/late.pid) 2>/dev/null; rm -f /tmp/late.pid']);
    }
  });

  it("reads the target's TCP table by sock_diag, as /proc/<pid>/net/tcp shows it", async () => {
    await onTarget(1); // the agent's connection to the target stays open
    const info = await new Docker().getContainer(target.getId()).inspect();
    const netns = (await sandboxOf(new Docker(), target.getId(), info.State.Pid)) as string;
    const text = (t: Awaited<ReturnType<typeof tcpTableOf>>) => ({
      listening: t.listening,
      connections: t.connections.map((c) => `${c.family} ${c.local}:${c.localPort} ${c.remote}:${c.remotePort} ${c.way}`).sort(),
    });
    const byDiag = text(targetTcpTable({ containerId: target.getId(), netns }));
    const byProc = text(await tcpTableOf(info.State.Pid));
    console.info(`sock_diag: ${JSON.stringify(byDiag)}`);
    expect(byDiag.listening).toContain(8080);
    expect(byDiag.connections.some((c) => /:8080 \S+ inbound$/.test(c))).toBe(true);
    expect(byDiag).toEqual(byProc);
    await releaseIdleQueueSlots();
  });

  it('the rules and their journal record go once the netns has no fault', async () => {
    const f = await chaos.inject({ kind: 'network-latency', target, latencyMs: 10 });
    const journaled = journalOf().filter((d) => d.startsWith('packet path rules in'));
    const inForce = await keptRules(target);
    await f.revert();
    expect(inForce.length).toBeGreaterThan(0);
    expect(journaled.length).toBeGreaterThan(0);
    expect(await ourChainsOf(target)).toEqual([]);
    expect(journalOf().filter((d) => d.startsWith('packet path rules in'))).toEqual([]);
  });
});

describe('without kept rules (VITEST_CHAOS_PACKET_RULES=per-fault): a chain per fault, the same effect', () => {
  let target: StartedTestContainer;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  beforeAll(async () => {
    process.env.VITEST_CHAOS_PACKET_RULES = 'per-fault';
    target = await startHttpServer('per-fault-target');
    await times(agent, ipOf(target), 3);
  });
  afterAll(async () => {
    delete process.env.VITEST_CHAOS_PACKET_RULES;
    agent.destroy();
    await stopAll(target);
  });

  it('commits the fault its own chain at inject and deletes it at revert', async () => {
    const base = median(await times(agent, ipOf(target), 5));
    const f = await chaos.inject({ kind: 'network-latency', target, latencyMs: 60 });
    const during = median(await times(agent, ipOf(target), 5));
    const chains = await ourChainsOf(target);
    const s = f.stats();
    await f.revert();
    const after = median(await times(agent, ipOf(target), 5));
    console.info(`per-fault chain: ${base.toFixed(1)} -> ${during.toFixed(1)} -> ${after.toFixed(1)} ms; chains ${chains}`);
    expect(during - base).toBeGreaterThanOrEqual(57);
    expect(during - base).toBeLessThan(80);
    expect(after - base).toBeLessThan(10);
    expect(chains.some((c) => /^VC-Q\d+-O$/.test(c))).toBe(true);
    expect(chains.some((c) => c.includes('VC-S'))).toBe(false);
    expect(s.packetsDelayed).toBeGreaterThanOrEqual(5);
    expect(await ourChainsOf(target)).toEqual([]);
  });
});
