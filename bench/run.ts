// npm run bench: speed and overhead, measured side by side in one run on this
// machine and printed as a table. No pass/fail: the goals are printed beside.
import autocannon from 'autocannon';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import http from 'node:http';
import net from 'node:net';
import { GenericContainer, Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { createChaos } from '../src/index.js';
import { startDemoSystem } from '../examples/demo-system.js';
import { kernel } from '../src/kernel/kernel.js';
import { KernelObserver } from '../src/observe/kernel-observer.js';
import { TargetResolver } from '../src/targets/resolve-target.js';

process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
const LABEL = { 'vitest-chaos.test': 'bench', 'vitest-chaos.run': String(process.pid) };
const IMAGE = 'vitest-chaos/http-server:latest';

interface Row {
  what: string;
  value: string;
  goal: string;
}
const rows: Row[] = [];
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length - 1) * q))] as number;
}

async function timeInjectRevert(
  chaos: ReturnType<typeof createChaos>,
  label: string,
  spec: Parameters<ReturnType<typeof createChaos>['inject']>[0],
  n: number,
): Promise<void> {
  const inject: number[] = [];
  const revert: number[] = [];
  // No traffic runs meanwhile: each revert warns that its fault matched nothing, which is
  // expected here; the warnings are counted, not printed (a line to stderr is tens of µs).
  const warn = console.warn;
  let unmatched = 0;
  console.warn = (...args: unknown[]) => {
    if (String(args[0]).includes('matched nothing')) unmatched++;
    else warn(...args);
  };
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const f = await chaos.inject(spec);
      const t1 = performance.now();
      await f.revert();
      const t2 = performance.now();
      inject.push(t1 - t0);
      revert.push(t2 - t1);
    }
  } finally {
    console.warn = warn;
  }
  if (unmatched) log(`${label}: ${unmatched} of ${n} faults matched nothing (no traffic while timed: expected)`);
  rows.push({
    what: `${label}: inject() until in force, median (p95) ms`,
    value: `${quantile(inject, 0.5).toFixed(2)} (${quantile(inject, 0.95).toFixed(2)})`,
    goal: '<= 0.3 ms median',
  });
  rows.push({
    what: `${label}: revert() until gone, median (p95) ms`,
    value: `${quantile(revert, 0.5).toFixed(2)} (${quantile(revert, 0.95).toFixed(2)})`,
    goal: '<= 0.3 ms median',
  });
}

async function throughput(url: string, seconds: number): Promise<number> {
  const r = await autocannon({ url, connections: 16, duration: seconds, pipelining: 1 });
  if (r.errors || r.non2xx) throw new Error(`benchmark saw ${r.errors} errors and ${r.non2xx} non-2xx answers`);
  return r.requests.average;
}

// kernel.bpf_stats_enabled makes the kernel time every program run; it costs a
// little, so it is on only for this run and restored to what it was.
const BPF_STATS = '/proc/sys/kernel/bpf_stats_enabled';
function programStats(prefix = 'vc_'): { ns: number; runs: number } {
  const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })) as {
    name?: string;
    run_time_ns?: number;
    run_cnt?: number;
    pids?: { pid: number }[];
  }[];
  let ns = 0;
  let runs = 0;
  for (const p of progs) {
    if (!p.name?.startsWith(prefix)) continue; // only this process loads ours while the bench runs
    ns += p.run_time_ns ?? 0;
    runs += p.run_cnt ?? 0;
  }
  return { ns, runs };
}

const statsWas = readFileSync(BPF_STATS, 'utf8').trim();
/** Turns the kernel's per-run timing on for fn only: it slows every program run down. */
async function withBpfStats<T>(fn: () => Promise<T>): Promise<T> {
  writeFileSync(BPF_STATS, '1');
  try {
    return await fn();
  } finally {
    writeFileSync(BPF_STATS, statsWas);
  }
}

/** Bytes the kernel charges for the BPF maps this process holds (fdinfo memlock). */
function mapMemoryBytes(): number {
  let sum = 0;
  for (const fd of readdirSync('/proc/self/fdinfo')) {
    let info = '';
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    const m = /^memlock:\s+(\d+)/m.exec(info);
    if (m && /^map_type:/m.test(info)) sum += Number(m[1]);
  }
  return sum;
}

/**
 * Observers (chaos.observe) on the server: loopback HTTP throughput with none and with
 * one attached (ABBA rounds), and what their tracepoints cost per event. They run for
 * every event of the machine (each switch, wakeup, exit, connect exit...), observed or
 * not, so the cost is also given per second of the whole machine.
 */
async function observerBench(url: string, resolved: Awaited<ReturnType<TargetResolver['resolve']>>): Promise<void> {
  log('loopback HTTP throughput, alternating: no observer / an observer on the server');
  const none: number[] = [];
  const observed: number[] = [];
  const withObserver = async <T>(fn: () => Promise<T>): Promise<{ value: T; seen: ReturnType<KernelObserver['stop']> }> => {
    const obs = new KernelObserver(kernel(), resolved);
    try {
      const value = await fn();
      return { value, seen: obs.stop() };
    } finally {
      obs.stop();
    }
  };
  const rounds = Number(process.env.BENCH_ROUNDS ?? 8);
  for (let i = 0; i < rounds; i++) {
    const one = async () => observed.push((await withObserver(() => throughput(url, 3))).value);
    if (i % 2 === 0) {
      none.push(await throughput(url, 3));
      await one();
    } else {
      await one();
      none.push(await throughput(url, 3));
    }
  }
  const t0 = programStats('vc_obs_');
  const wall0 = performance.now();
  const { value: rps, seen } = await withObserver(() => withBpfStats(() => throughput(url, 3)));
  const wallNs = (performance.now() - wall0) * 1e6;
  const t1 = programStats('vc_obs_');
  const ns = t1.ns - t0.ns;
  const runs = t1.runs - t0.runs;
  const a = quantile(observed, 0.5);
  const b = quantile(none, 0.5);
  rows.push({
    what: 'observer rounds (3 s each, ABBA), req/s none | observed',
    value: `${none.map((x) => x.toFixed(0)).join(' ')} | ${observed.map((x) => x.toFixed(0)).join(' ')}`,
    goal: '-',
  });
  rows.push({
    what: 'loopback HTTP req/s: no observer | an observer on the server (medians)',
    value: `${b.toFixed(0)} | ${a.toFixed(0)}`,
    goal: '-',
  });
  rows.push({ what: 'throughput ratio observed / none', value: (a / b).toFixed(3), goal: '>= 0.98' });
  if (runs > 0) {
    rows.push({
      what: 'observer tracepoints: ns per event (bpf_stats, separate round), events per request',
      value: `${(ns / runs).toFixed(0)} ns, ${(runs / (rps * 3)).toFixed(1)}`,
      goal: '<= 200 ns',
    });
    rows.push({
      what: 'observer tracepoints: events/s machine-wide, share of the machine CPU',
      value: `${((runs / wallNs) * 1e9).toFixed(0)}/s, ${((ns / (wallNs * availableParallelism())) * 100).toFixed(2)} %`,
      goal: '<= 1 %',
    });
    rows.push({
      what: 'what that observer saw of the server in the timed round',
      value: `${seen.runqueueSamples} runqueue waits, p99 ${seen.runqueueDelayP99Us} us, ${seen.tcpRetransmits} retransmits`,
      goal: '-',
    });
  }
}

/** n sequential GETs on one kept-alive connection, each `idleMs` after the last answer; each one's time in ms. */
async function sequential(host: string, port: number, path: string, n: number, idleMs = 0): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      if (idleMs > 0) await new Promise((r) => setTimeout(r, idleMs));
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        http
          .get({ host, port, path, agent }, (res) => {
            res.resume();
            res.on('end', () => resolve());
          })
          .on('error', reject);
      });
      out.push(performance.now() - t0);
    }
  } finally {
    agent.destroy();
  }
  return out;
}

/** Downloads `bytes` once over a new connection; MB/s. */
async function bulk(host: string, port: number, bytes: number): Promise<number> {
  const t0 = performance.now();
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    http
      .get({ host, port, path: `/bytes?n=${bytes}`, agent: false }, (res) => {
        res.on('data', (d: Buffer) => (got += d.length));
        res.on('end', () => resolve());
      })
      .on('error', reject);
  });
  if (got !== bytes) throw new Error(`bulk: got ${got} of ${bytes} bytes`);
  return bytes / 1e6 / ((performance.now() - t0) / 1000);
}

/** A plain Node proxy: socket.pipe both ways, what a user would write in ten lines. */
async function pipeProxy(host: string, port: number): Promise<{ port: number; close(): void }> {
  const server = net.createServer((c) => {
    const u = net.connect(port, host);
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

/** The packet data path (issue 8): latency fidelity on an open connection, bulk throughput, inject/revert. */
async function packetPath(chaos: ReturnType<typeof createChaos>, target: StartedTestContainer, ip: string): Promise<void> {
  log('packet path: latency fidelity (100 sequential requests on one connection)');
  const n = Number(process.env.BENCH_REQUESTS ?? 100);
  await sequential(ip, 8080, '/', 20); // warm-up
  const base = await sequential(ip, 8080, '/', n);
  // The control for a delay: the same requests, each after the 100 ms the
  // target, the client and their CPUs otherwise spend idle while a packet is
  // held (what any delay costs here beyond the delay itself, netem's too).
  const idle = await sequential(ip, 8080, '/', n, 100);
  // The control for the tail: the server itself answers 100 ms late (its own timer), so the
  // client waits idle for the answer as it does behind a held packet, with nothing held.
  const waited = await sequential(ip, 8080, '/delay?ms=100', n);
  let f = await chaos.inject({ kind: 'network-latency', target, latencyMs: 100 });
  // The first request of each opens the agent's connection (its handshake is held too): left out.
  const held = (await sequential(ip, 8080, '/', n + 1)).slice(1);
  const timing = f.stats() as { queueLagMsMax?: number; releaseLateMsMax?: number; releaseSpinMs?: number; wakeUpMs?: number };
  if (process.env.BENCH_DEBUG) log(JSON.stringify(timing));
  await f.revert();
  f = await chaos.inject({ kind: 'network-latency', target, latencyMs: 0 });
  const zero = (await sequential(ip, 8080, '/', n + 1)).slice(1);
  await f.revert();
  const b50 = quantile(base, 0.5);
  rows.push({
    what: 'direct: request on an open connection, p50 (p99) ms',
    value: `${b50.toFixed(2)} (${quantile(base, 0.99).toFixed(2)})`,
    goal: '-',
  });
  rows.push({
    what: 'direct, each request after 100 ms idle (control), p50 (p99) ms',
    value: `${quantile(idle, 0.5).toFixed(2)} (${quantile(idle, 0.99).toFixed(2)})`,
    goal: '-',
  });
  rows.push({
    what: 'latency 100 ms: added at p50; delayed p99 ms',
    value: `+${(quantile(held, 0.5) - b50).toFixed(2)}; ${quantile(held, 0.99).toFixed(2)}`,
    goal: '+100 +/- 0.5; p99 <= 103',
  });
  rows.push({
    what: 'latency 100 ms, delayed p50 (p99) | the server answering 100 ms late itself, p50 (p99) ms',
    value: `${quantile(held, 0.5).toFixed(2)} (${quantile(held, 0.99).toFixed(2)}) | ${quantile(waited, 0.5).toFixed(2)} (${quantile(waited, 0.99).toFixed(2)})`,
    goal: 'delayed no worse than a perfect 100 ms wait',
  });
  rows.push({
    what: 'latency 100 ms: added at p50 over the 100 ms idle control',
    value: `+${(quantile(held, 0.5) - quantile(idle, 0.5)).toFixed(2)}`,
    goal: '+100 +/- 0.5',
  });
  rows.push({
    what: 'latency 100 ms: reader, max ms: queue -> read | due -> given back; spin ms/request; wake-up ms',
    value: `${(timing.queueLagMsMax ?? 0).toFixed(3)} | ${(timing.releaseLateMsMax ?? 0).toFixed(3)}; ${((timing.releaseSpinMs ?? 0) / n).toFixed(3)}; ${(timing.wakeUpMs ?? 0).toFixed(3)}`,
    goal: '-',
  });
  rows.push({ what: 'latency 0 ms: added at p50 ms', value: `+${(quantile(zero, 0.5) - b50).toFixed(2)}`, goal: '<= 0.31 (Toxiproxy)' });

  log('packet path: bulk throughput');
  const bytes = 256 * 1024 * 1024;
  const pipe = await pipeProxy(ip, 8080);
  const direct: number[] = [];
  const piped: number[] = [];
  const queued: number[] = [];
  let cpuMs = 0;
  try {
    await bulk(ip, 8080, bytes); // warm-up
    const rounds = Number(process.env.BENCH_BULK_ROUNDS ?? 3);
    for (let i = 0; i < rounds; i++) {
      direct.push(await bulk(ip, 8080, bytes));
      piped.push(await bulk('127.0.0.1', pipe.port, bytes));
      const g = await chaos.inject({ kind: 'network-latency', target, latencyMs: 0 });
      try {
        const c0 = process.cpuUsage();
        queued.push(await bulk(ip, 8080, bytes));
        const c = process.cpuUsage(c0);
        cpuMs += (c.user + c.system) / 1000;
      } finally {
        await g.revert();
      }
    }
  } finally {
    pipe.close();
  }
  const [d, p, q] = [direct, piped, queued].map((xs) => quantile(xs, 0.5)) as [number, number, number];
  rows.push({
    what: 'bulk MB/s (median): direct | Node socket.pipe proxy | packet path (latency 0)',
    value: `${d.toFixed(0)} | ${p.toFixed(0)} | ${q.toFixed(0)}`,
    goal: 'packet path >= 1.0x pipe',
  });
  rows.push({ what: 'bulk ratio packet path / pipe', value: (q / p).toFixed(2), goal: '>= 1.0' });
  rows.push({
    what: 'bulk, packet path (latency 0): CPU of this process (client and reader), ms per GB',
    value: (cpuMs / ((queued.length * bytes) / 1e9)).toFixed(0),
    goal: '-',
  });

  log('packet path: inject/revert');
  await timeInjectRevert(chaos, 'network-latency (packet path)', { kind: 'network-latency', target, latencyMs: 50 }, 100);
  await timeInjectRevert(chaos, 'network-latency inbound', { kind: 'network-latency', target, latencyMs: 50, connections: 'inbound' }, 100);
  await timeInjectRevert(chaos, 'http inbound', { kind: 'http', target, connections: 'inbound', abort: { status: 503 } }, 100);
  // Proxied kinds: a proxy on the gateway for new outbound connections, the packet path for the rest.
  await timeInjectRevert(chaos, 'network-timeout (proxy + packet path)', { kind: 'network-timeout', target }, 100);
}

async function main(): Promise<void> {
  try {
    await run();
    printRows();
  } finally {
    writeFileSync(BPF_STATS, statsWas);
  }
}

async function run(): Promise<void> {
  const port = 18080 + Math.floor(Math.random() * 1000);
  const containers: StartedTestContainer[] = [];
  let network: StartedNetwork | undefined;
  try {
    log('starting containers');
    // Host network: the server listens on loopback but lives in its own cgroup,
    // so the benchmark is a loopback HTTP benchmark through our programs.
    const server = await new GenericContainer(IMAGE)
      .withNetworkMode('host')
      .withEnvironment({ HOST: '127.0.0.1', PORT: String(port), UDP_PORT: String(port), TCP_ECHO_PORT: String(port + 1) })
      .withLabels(LABEL)
      .withWaitStrategy(Wait.forLogMessage(/listening http=/))
      .start();
    containers.push(server);
    // The target on a network of its own: on Docker's default bridge, other
    // containers coming and going change the bridge's MAC address (it follows
    // its ports' lowest), and the target's frames to the host sent to the old
    // one are dropped (seen as 300-400 ms requests: a TCP retransmission).
    network = await new Network().start();
    const target = await new GenericContainer(IMAGE)
      .withNetwork(network)
      .withLabels(LABEL)
      .withWaitStrategy(Wait.forLogMessage(/listening http=/))
      .start();
    containers.push(target);

    const url = `http://127.0.0.1:${port}/`;
    const resolved = await new TargetResolver().resolve(server);
    await throughput(url, 4); // warm-up: the server's JIT, the kernel's caches
    if (process.env.BENCH_ONLY === 'observe') {
      await observerBench(url, resolved);
      return;
    }
    const chaos = createChaos({ seed: 1, progress: false });
    if (process.env.BENCH_ONLY === 'packet-path') {
      const ip = target.getIpAddress(target.getNetworkNames()[0] as string);
      await packetPath(chaos, target, ip);
      return;
    }
    const mem0 = mapMemoryBytes();
    const t0 = performance.now();
    await (await chaos.inject({ kind: 'network-loss', target, percent: 10 })).revert();
    const mem1 = mapMemoryBytes();
    const held = [];
    for (let i = 0; i < 64; i++) held.push(await chaos.inject({ kind: 'network-loss', target, percent: 0, port: 9 }));
    const mem64 = mapMemoryBytes();
    for (const f of held) await f.revert();
    const k = kernel();
    void k.connect;
    const mem2 = mapMemoryBytes();
    void k.veth;
    void k.dns;
    void k.syscallSignal;
    const mem3 = mapMemoryBytes();
    const mb = (b: number) => (b / 1e6).toFixed(2);
    rows.push({
      what: 'BPF map memory: loss object / + connect object / all objects, MB',
      value: `${mb(mem1 - mem0)} / ${mb(mem2 - mem0)} / ${mb(mem3 - mem0)}`,
      goal: 'small (with 8 preallocated slots a target: 1.92 / 11.64 / 17.20)',
    });
    rows.push({
      what: 'BPF map memory added by 64 loss faults on one target, KB',
      value: ((mem64 - mem1) / 1e3).toFixed(1),
      goal: '-',
    });
    rows.push({
      what: 'first inject+revert of the process (loads the BPF object), ms',
      value: (performance.now() - t0).toFixed(1),
      goal: '-',
    });
    log('timing inject/revert');
    await timeInjectRevert(chaos, 'network-loss', { kind: 'network-loss', target, percent: 10 }, 200);
    await timeInjectRevert(chaos, 'network-partition', { kind: 'network-partition', target, action: 'reject' }, 200);
    await packetPath(chaos, target, target.getIpAddress(target.getNetworkNames()[0] as string));

    log('breach -> every fault reverted, over short experiments against the demo system');
    const demo = await startDemoSystem();
    try {
      const rollback: number[] = [];
      const runs = Number(process.env.BENCH_EXPERIMENTS ?? 15);
      for (let i = 0; i < runs; i++) {
        const r = await chaos.experiment({
          name: `rollback ${i}`,
          hypothesis: 'errors stay under 5% while the backend is unreachable',
          steadyState: { load: { url: demo.url, rps: 100 }, slos: { errorRate: { max: 0.05 } }, windowMs: 200 },
          baselineMs: 400,
          faults: [
            { kind: 'network-partition', target: demo.api, peer: demo.backend, action: 'reject' },
            { kind: 'network-latency', target: demo.api, peer: demo.backend, latencyMs: 5 },
          ],
          durationMs: 3000,
          recovery: { withinMs: 1000 },
        });
        if (r.rollbackMs === null) throw new Error(`experiment ${i} did not abort: ${r.reason}`);
        rollback.push(r.rollbackMs);
      }
      rows.push({
        what: `breach -> all faults reverted (2 faults, ${runs} experiments), median (p95) ms`,
        value: `${quantile(rollback, 0.5).toFixed(1)} (${quantile(rollback, 0.95).toFixed(1)})`,
        goal: '<= 100 ms',
      });
    } finally {
      await demo.stop();
    }

    log('loopback HTTP throughput, alternating: none attached / attached with no fault');
    const none: number[] = [];
    const attached: number[] = [];
    let bpfNs = 0;
    let bpfRuns = 0;
    let requestsAttached = 0;
    const measureAttached = async (timed = false) => {
      const detachNf = kernel().packetDrop.attachIdle(resolved.cgroup.directory, resolved.cgroup.id);
      const detachConn = kernel().connect.attachIdle(resolved.cgroup.directory, resolved.cgroup.id);
      try {
        if (!timed) {
          attached.push(await throughput(url, 3));
        } else {
          const t0 = programStats();
          const rps = await withBpfStats(() => throughput(url, 3));
          const t1 = programStats();
          requestsAttached += rps * 3;
          bpfNs += t1.ns - t0.ns;
          bpfRuns += t1.runs - t0.runs;
        }
      } finally {
        detachNf();
        detachConn();
      }
    };
    // ABBA order cancels a drift of the machine's speed over the run.
    const rounds = Number(process.env.BENCH_ROUNDS ?? 8);
    for (let i = 0; i < rounds; i++) {
      if (i % 2 === 0) {
        none.push(await throughput(url, 3));
        await measureAttached();
      } else {
        await measureAttached();
        none.push(await throughput(url, 3));
      }
    }
    await measureAttached(true); // one more round, timed by the kernel, not in the ratio
    const a = quantile(attached, 0.5);
    const b = quantile(none, 0.5);
    rows.push({
      what: 'rounds (3 s each, ABBA), req/s none | attached',
      value: `${none.map((x) => x.toFixed(0)).join(' ')} | ${attached.map((x) => x.toFixed(0)).join(' ')}`,
      goal: '-',
    });
    rows.push({ what: 'loopback HTTP req/s, no programs attached (median of rounds)', value: b.toFixed(0), goal: '-' });
    rows.push({ what: 'loopback HTTP req/s, our programs attached, no fault', value: a.toFixed(0), goal: '-' });
    rows.push({
      what: 'throughput ratio attached / none (machine noise is about +/-10% per round)',
      value: (a / b).toFixed(3),
      goal: '>= 0.99',
    });
    if (bpfRuns > 0) {
      const perReq = bpfNs / requestsAttached;
      rows.push({
        what: 'our programs: ns per run (kernel bpf_stats, separate round), runs per request',
        value: `${(bpfNs / bpfRuns).toFixed(0)} ns, ${(bpfRuns / requestsAttached).toFixed(1)}`,
        goal: '-',
      });
      // The load generator and the server keep every core busy, so one request costs cores/rps of CPU.
      const cpuPerReqNs = (availableParallelism() * 1e9) / (requestsAttached / 3);
      rows.push({
        what: "our programs' share of the CPU a request costs (bpf_stats' own timing included)",
        value: `${((perReq / cpuPerReqNs) * 100).toFixed(2)} %`,
        goal: '<= 1 %',
      });
    }
    await observerBench(url, resolved);
  } finally {
    await Promise.allSettled(containers.map((c) => c.stop({ timeout: 0 })));
    await network?.stop().catch(() => undefined);
  }
}

function printRows(): void {
  const w1 = Math.max(...rows.map((r) => r.what.length));
  const w2 = Math.max(...rows.map((r) => r.value.length));
  console.log(`\n${'measure'.padEnd(w1)}  ${'value'.padStart(w2)}  goal`);
  console.log(`${'-'.repeat(w1)}  ${'-'.repeat(w2)}  ----`);
  for (const r of rows) console.log(`${r.what.padEnd(w1)}  ${r.value.padStart(w2)}  ${r.goal}`);
}

await main();
