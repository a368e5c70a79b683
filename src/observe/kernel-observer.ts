// What the kernel saw of one container: TCP retransmits and connects, runqueue
// delay, I/O waits and bytes, OOM kills and process exits, counted by the
// tracepoints of bpf/observe.bpf.c for the container's cgroups only. A
// restarted container gets a new cgroup; the observer follows it (checked every
// second and at every snapshot), so a phase that spans a restart is counted whole.
import { statSync } from 'node:fs';
import { constants } from 'node:os';
import type { Kernel } from '../kernel/kernel.js';
import { histQuantile, histSum, type ObservedCounters, type ObservedEvent, type ObservePrograms } from '../kernel/observe-programs.js';
import { signalName } from '../kernel/signals.js';
import { cgroupV1Dir } from '../targets/cgroup-v1.js';
import { cgroupOfPid } from '../targets/cgroup-v2.js';
import type { ResolvedTarget } from '../targets/resolve-target.js';

/** A process of the container that the OOM killer chose. */
export interface OomKill {
  comm: string;
  /** The process id as the host sees it. */
  pid: number;
}

export interface ProcessExit {
  comm: string;
  /** The process id as the host sees it. */
  pid: number;
  /** The signal that ended it ('SIGKILL'), or null when it exited by itself. */
  signal: string | null;
  /** Its exit status when it exited by itself, else null. */
  exitCode: number | null;
}

/** What the kernel saw of one container over a span of time (plain, JSON-serialisable). */
export interface KernelObservation {
  /** TCP segments retransmitted on the container's sockets (by the socket's cgroup, so timer retransmits count). */
  tcpRetransmits: number;
  /** TCP connects the container started (SYN sent), plus connect(2) calls that failed before sending one. */
  connectAttempts: number;
  /** Failed connects by errno name: 'ECONNREFUSED' (RST), 'ETIMEDOUT', 'EPERM' (refused by a cgroup hook), ...; 'ECONNABORTED': closed by its owner before an answer. */
  connectErrors: Record<string, number>;
  /** p99 of the time its threads waited for a CPU while runnable (woken or preempted, CPU quota throttling included), microseconds; null without samples. Log-linear buckets: within 12.5 % (the bucket's upper bound). */
  runqueueDelayP99Us: number | null;
  /** The time its threads waited for a CPU while runnable, summed over them, ms (within 12.5 %): CPU pressure, as PSI's cpu "some" counts it per task. Long waits (a CPU quota's stalls) dominate it where a p99 over many short waits may miss them. */
  runqueueDelayTotalMs: number;
  /** p99 of the time its threads slept waiting for block I/O (io_schedule until woken: throttling and the device together), microseconds; null without samples. Same buckets. */
  blockIoLatencyP99Us: number | null;
  /** Bytes of block I/O submitted by (charged to) the container: reads and direct writes; buffered writes where the cgroup version charges writeback to it (v2). */
  blockIoBytes: number;
  /** Processes the OOM killer chose in the container. */
  oomKills: OomKill[];
  /** Processes (not threads) of the container that ended. */
  processExits: ProcessExit[];
  /** Connects that got an answer (SYN-ACK). */
  connectsEstablished: number;
  /** p99 of the smoothed RTT of its TCP connections as each left ESTABLISHED, microseconds; null without samples. */
  tcpRttP99Us: number | null;
  /** Block I/O requests (bios) submitted. */
  blockIoOps: number;
  /** Waits for block I/O (samples of blockIoLatencyP99Us). */
  blockIoWaits: number;
  /** Runqueue waits measured (samples of runqueueDelayP99Us). */
  runqueueSamples: number;
  /** Exits and OOM kills that happened but could not be read in time (the shared ring of 1024 overflowed). */
  eventsLost: number;
  /** The span observed, ms. */
  durationMs: number;
}

/** A point of an observer's counters, to measure from (e.g. a phase's start). */
export interface ObserverMark {
  readonly at: number;
  readonly counters: ObservedCounters;
  readonly seq: number;
  readonly lost: number;
}

/** Finds the container again (after a restart); null while it is not running. */
export type Relocate = () => Promise<ResolvedTarget | null>;

const ERRNO_NAMES = new Map(Object.entries(constants.errno as Record<string, number>).map(([k, v]) => [v, k]));

export function errnoName(n: number): string {
  return ERRNO_NAMES.get(n) ?? `errno ${n}`;
}

/** The cgroups whose events are the container's: its v2 cgroup, and its v1 blkio cgroup where block I/O is charged there. */
export function cgroupIdsOf(target: ResolvedTarget): bigint[] {
  const ids = [target.cgroup.id];
  try {
    ids.push(statSync(cgroupV1Dir(target.pid, 'blkio'), { bigint: true }).ino);
  } catch {
    // pure cgroup v2: bios carry the v2 cgroup
  }
  return ids;
}

export class KernelObserver {
  /** The container's name without the leading '/'. */
  readonly name: string;
  readonly id: string;
  private readonly programs: ObservePrograms;
  private readonly index: number;
  private readonly start: ObserverMark;
  private readonly events: ObservedEvent[] = [];
  private seq: number;
  private lost = 0;
  private pid: number;
  private cgroupId: bigint;
  private timer?: NodeJS.Timeout;
  private relocating?: Promise<void>;
  private final?: KernelObservation;
  private ticks = 0;

  constructor(
    kernel: Kernel,
    target: ResolvedTarget,
    private readonly relocate?: Relocate,
  ) {
    if (target.state === 'stopped' || target.pid === 0) throw new Error(`container ${target.name} is not running: nothing to observe`);
    this.name = target.name;
    this.id = target.id;
    this.programs = kernel.observe;
    this.pid = target.pid;
    this.cgroupId = target.cgroup.id;
    this.seq = this.programs.lastSeq();
    this.index = this.programs.register(cgroupIdsOf(target));
    this.start = this.mark();
    // Reads the event ring often enough that a burst of exits elsewhere does not overwrite ours.
    this.timer = setInterval(() => this.tick(), 250);
    this.timer.unref();
  }

  /** Whether it still counts (not stopped). */
  get running(): boolean {
    return this.final === undefined;
  }

  /** The counters now, to measure a span from. */
  mark(): ObserverMark {
    if (this.endMark) return this.endMark; // stopped: its index may be another observer's now
    this.drain();
    return { at: performance.now(), counters: this.programs.read(this.index), seq: this.seq, lost: this.lost };
  }

  /** What the kernel saw from `since` (default: since the observer started) to now. */
  snapshot(since: ObserverMark = this.start): KernelObservation {
    if (this.final) return since === this.start ? this.final : this.between(since, this.endMark as ObserverMark);
    return this.between(since, this.mark());
  }

  /** What the kernel saw between two marks. */
  between(from: ObserverMark, to: ObserverMark): KernelObservation {
    const a = from.counters;
    const b = to.counters;
    const d = (k: keyof ObservedCounters) => (b[k] as number) - (a[k] as number);
    const dh = (k: 'connectErrors' | 'runqHistNs' | 'ioWaitHistNs' | 'rttHistUs') => b[k].map((v, i) => v - (a[k][i] ?? 0));
    const connectErrors: Record<string, number> = {};
    dh('connectErrors').forEach((n, errno) => {
      if (n > 0) connectErrors[errnoName(errno)] = n;
    });
    const events = this.events.filter((e) => e.seq > from.seq && e.seq <= to.seq);
    const us = (ns: number | null) => (ns === null ? null : Math.round(ns / 1000));
    return {
      tcpRetransmits: d('tcpRetransmits'),
      connectAttempts: d('connectAttempts'),
      connectErrors,
      runqueueDelayP99Us: us(histQuantile(dh('runqHistNs'), 0.99)),
      runqueueDelayTotalMs: Math.round(histSum(dh('runqHistNs')) / 1e4) / 100,
      blockIoLatencyP99Us: us(histQuantile(dh('ioWaitHistNs'), 0.99)),
      blockIoBytes: d('blockIoBytes'),
      oomKills: events.filter((e) => e.kind === 'oom').map((e) => ({ comm: e.comm, pid: e.pid })),
      processExits: events
        .filter((e) => e.kind === 'exit')
        .map((e) => {
          const sig = e.exitCode & 0x7f;
          return { comm: e.comm, pid: e.pid, signal: sig ? signalName(sig) : null, exitCode: sig ? null : (e.exitCode >> 8) & 0xff };
        }),
      connectsEstablished: d('connectsEstablished'),
      tcpRttP99Us: histQuantile(dh('rttHistUs'), 0.99),
      blockIoOps: d('blockIoOps'),
      blockIoWaits: d('ioWaits'),
      runqueueSamples: d('runqSamples'),
      eventsLost: to.lost - from.lost,
      durationMs: Math.round(to.at - from.at),
    };
  }

  /** Follows the container to its new cgroup now if it was restarted (also done every second). */
  async follow(): Promise<void> {
    if (!this.relocate || this.final) return;
    if (this.sameCgroup()) return;
    this.relocating ??= (async () => {
      try {
        const t = await this.relocate!();
        if (t?.pid && !this.final) {
          this.programs.addCgroups(this.index, cgroupIdsOf(t));
          this.pid = t.pid;
          this.cgroupId = t.cgroup.id;
        }
      } catch {
        // not running now: tried again at the next tick
      } finally {
        this.relocating = undefined;
      }
    })();
    await this.relocating;
  }

  private endMark?: ObserverMark;

  /** Stops counting and returns everything since the start. Idempotent. */
  stop(): KernelObservation {
    if (this.final) return this.final;
    clearInterval(this.timer);
    this.endMark = this.mark();
    this.final = this.between(this.start, this.endMark);
    this.programs.release(this.index);
    return this.final;
  }

  private tick(): void {
    if (this.final) return;
    try {
      this.drain();
    } catch {
      // the next tick or snapshot reads again
    }
    if (++this.ticks % 4 === 0) void this.follow();
  }

  private drain(): void {
    const r = this.programs.events(this.seq);
    this.seq = r.lastSeq;
    this.lost += r.lost; // other observers' lost events count too: we cannot tell whose they were
    for (const e of r.events) if (e.target === this.index) this.events.push(e);
  }

  private sameCgroup(): boolean {
    try {
      return cgroupOfPid(this.pid).id === this.cgroupId;
    } catch {
      return false;
    }
  }
}
