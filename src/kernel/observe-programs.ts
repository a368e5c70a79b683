// The observe object (bpf/observe.bpf.c): tracepoints attached once for the
// whole machine while at least one observer is registered, detached with the
// last. An observer is an index into obs_stats; its cgroups (v2, and v1 blkio
// where block I/O is charged there) map to that index. Counters only grow:
// the observe layer takes differences.
import { bpfObjectPath, loadAddon, type NativeLink, type NativeObject } from './addon.js';
import { BPF_CONSTANTS } from './bpf-types.js';
import { checkConstants, structCodec, type StructCodec } from './struct-codec.js';

export const OBSERVE_PROGRAMS = [
  'vc_obs_retransmit',
  'vc_obs_sock_state',
  'vc_obs_sys_exit',
  'vc_obs_wakeup',
  'vc_obs_wakeup_new',
  'vc_obs_switch',
  'vc_obs_bio_queue',
  'vc_obs_oom',
  'vc_obs_exit',
] as const;

/** One observer's counters as the programs keep them (totals since it was registered). */
export interface ObservedCounters {
  tcpRetransmits: number;
  connectAttempts: number;
  connectsEstablished: number;
  connectErrorsTotal: number;
  blockIoBytes: number;
  blockIoOps: number;
  ioWaits: number;
  runqSamples: number;
  oomKills: number;
  processExits: number;
  rttSamples: number;
  /** Failed connects by errno (index = errno). */
  connectErrors: number[];
  /** Runqueue delays, nanoseconds, log-linear buckets (bucketBounds). */
  runqHistNs: number[];
  /** I/O waits (io_schedule until woken), nanoseconds. */
  ioWaitHistNs: number[];
  /** Smoothed RTT of connections leaving ESTABLISHED, microseconds. */
  rttHistUs: number[];
}

export interface ObservedEvent {
  seq: number;
  kind: 'exit' | 'oom';
  /** The observer index it belongs to. */
  target: number;
  pid: number;
  /** wait(2) status: the signal in the low 7 bits, the exit status in bits 8-15. */
  exitCode: number;
  comm: string;
}

/** [lower, upper) of a histogram bucket of bpf/observe.bpf.c's bucket_of(). */
export function bucketBounds(b: number): [number, number] {
  if (b < 4) return [b, b + 1];
  const msb = Math.floor(b / 4);
  const sub = b % 4;
  const step = 2 ** (msb - 2);
  const lo = 2 ** msb + sub * step;
  return [lo, lo + step];
}

/** The histogram's samples summed (each at its bucket's middle: within 12.5 %), in its unit. */
export function histSum(hist: readonly number[]): number {
  let sum = 0;
  for (let b = 0; b < hist.length; b++) {
    const n = hist[b] as number;
    if (n === 0) continue;
    const [lo, hi] = bucketBounds(b);
    sum += n * ((lo + hi - 1) / 2);
  }
  return sum;
}

/** The value below which `q` (0-1) of the histogram's samples lie (the bucket's upper bound), or null without samples. */
export function histQuantile(hist: readonly number[], q: number): number | null {
  let total = 0;
  for (const n of hist) total += n;
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let b = 0; b < hist.length; b++) {
    seen += hist[b] as number;
    if (seen >= rank) return bucketBounds(b)[1];
  }
  return bucketBounds(hist.length - 1)[1];
}

export class ObservePrograms {
  readonly object: NativeObject;
  readonly maxTargets = BPF_CONSTANTS.VC_OBS_MAX_TARGETS;
  private readonly ringSize = BPF_CONSTANTS.VC_OBS_EVENTS;
  private readonly statsCodec: StructCodec<'vc_obs_stats'>;
  private readonly eventCodec: StructCodec<'vc_obs_event'>;
  private links?: NativeLink[];
  private readonly inUse = new Map<number, Set<bigint>>();

  constructor() {
    this.object = new (loadAddon().BpfObject)(bpfObjectPath('observe'));
    checkConstants(this.object, 'observe');
    this.statsCodec = structCodec(this.object, 'vc_obs_stats');
    this.eventCodec = structCodec(this.object, 'vc_obs_event');
  }

  /** Takes a free index with zeroed counters, maps the cgroups to it and attaches the programs if they are not. */
  register(cgroupIds: readonly bigint[]): number {
    let index = -1;
    for (let i = 0; i < this.maxTargets; i++) {
      if (!this.inUse.has(i)) {
        index = i;
        break;
      }
    }
    if (index < 0)
      throw new Error(`vitest-chaos: ${this.maxTargets} observers are alive in this process; stop one before observing another`);
    this.object.mapUpdate('obs_stats', u32(index), Buffer.alloc(this.statsCodec.size));
    this.inUse.set(index, new Set());
    try {
      this.addCgroups(index, cgroupIds);
      this.attach();
    } catch (err) {
      this.release(index);
      throw err;
    }
    return index;
  }

  /** Maps more cgroups to an observer (a restarted container's new cgroup). */
  addCgroups(index: number, cgroupIds: readonly bigint[]): void {
    const mine = this.inUse.get(index);
    if (!mine) throw new Error(`observer ${index} is not registered`);
    for (const id of cgroupIds) {
      if (id === 0n || mine.has(id)) continue;
      this.object.mapUpdate('obs_cgroups', u64(id), u32(index));
      mine.add(id);
    }
  }

  cgroupsOf(index: number): bigint[] {
    return [...(this.inUse.get(index) ?? [])];
  }

  read(index: number): ObservedCounters {
    const buf = this.object.mapLookup('obs_stats', u32(index));
    if (!buf) throw new Error(`obs_stats has no entry ${index}`);
    const s = this.statsCodec.decode(buf);
    return {
      tcpRetransmits: Number(s.tcp_retransmits),
      connectAttempts: Number(s.connect_attempts),
      connectsEstablished: Number(s.connects_established),
      connectErrorsTotal: Number(s.connect_errors_total),
      blockIoBytes: Number(s.block_io_bytes),
      blockIoOps: Number(s.block_io_ops),
      ioWaits: Number(s.io_waits),
      runqSamples: Number(s.runq_samples),
      oomKills: Number(s.oom_kills),
      processExits: Number(s.process_exits),
      rttSamples: Number(s.rtt_samples),
      connectErrors: u64s(s.connect_errors),
      runqHistNs: u64s(s.runq_hist),
      ioWaitHistNs: u64s(s.io_hist),
      rttHistUs: u64s(s.rtt_hist),
    };
  }

  /** The sequence number of the newest event (0: none yet). */
  lastSeq(): number {
    const buf = this.object.mapLookup('obs_seq', u32(0));
    return buf ? Number(buf.readBigUInt64LE(0)) : 0;
  }

  /**
   * Events after `afterSeq`, oldest first, and how many of them the ring had
   * already overwritten (or were still being written) when read.
   */
  events(afterSeq: number): { events: ObservedEvent[]; lost: number; lastSeq: number } {
    const last = this.lastSeq();
    const from = Math.max(afterSeq + 1, last - this.ringSize + 1);
    let lost = Math.max(0, from - afterSeq - 1);
    const events: ObservedEvent[] = [];
    for (let seq = from; seq <= last; seq++) {
      const buf = this.object.mapLookup('obs_events', u32(seq % this.ringSize));
      const e = buf ? this.eventCodec.decode(buf) : null;
      if (!e || Number(e.seq) !== seq) {
        lost++;
        continue;
      }
      const nul = e.comm.indexOf(0);
      events.push({
        seq,
        kind: e.kind === BPF_CONSTANTS.VC_OBS_OOM ? 'oom' : 'exit',
        target: e.target,
        pid: e.pid,
        exitCode: e.exit_code,
        comm: e.comm.subarray(0, nul < 0 ? e.comm.length : nul).toString('utf8'),
      });
    }
    return { events, lost, lastSeq: last };
  }

  /** Unmaps the observer's cgroups and frees its index; the last one out detaches. Idempotent. */
  release(index: number): void {
    const mine = this.inUse.get(index);
    if (!mine) return;
    for (const id of mine) this.object.mapDelete('obs_cgroups', u64(id));
    this.inUse.delete(index);
    if (this.inUse.size === 0) this.detach();
  }

  /** Whether the programs are attached now (for tests and the leak check). */
  get attached(): boolean {
    return this.links !== undefined;
  }

  /** Observers registered now. */
  get registered(): number {
    return this.inUse.size;
  }

  private attach(): void {
    if (this.links) return;
    const links: NativeLink[] = [];
    try {
      for (const p of OBSERVE_PROGRAMS) links.push(this.object.attach(p));
    } catch (err) {
      for (const l of links) l.destroy();
      throw err;
    }
    this.links = links;
  }

  private detach(): void {
    for (const l of this.links ?? []) l.destroy();
    this.links = undefined;
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

function u64s(buf: Buffer): number[] {
  const out = new Array<number>(buf.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = Number(buf.readBigUInt64LE(i * 8));
  return out;
}
