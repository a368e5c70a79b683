// Typed access to the addon's NFQUEUE reader (native/packet-queue.cc): a
// thread of this process that holds, drops or resets the packets (IPv4 and
// IPv6) the rules of src/targets/queue-rules.ts queue in a target's network namespace.
import { loadAddon } from './addon.js';

export type PacketQueueMode = 'delay' | 'hold' | 'reset';

export interface PacketQueueOptions {
  /** The network namespace the queue lives in (a path such as Docker's SandboxKey). */
  netns: string;
  queue: number;
  mode: PacketQueueMode;
  /** delay: each packet is held this long (ms), plus a uniform draw in +/- jitterMs; order is kept. */
  delayMs?: number;
  jitterMs?: number;
  /** hold: a flow's packets pass until this many payload bytes went through it; reset: reset after it. -1: none. */
  afterBytes?: number;
  /** reset: reset this many ms after the flow was first seen (or added). -1: none. */
  afterMs?: number;
  /** reset: share of flows reset, drawn with the seed. */
  percent?: number;
  seed?: number;
  /** Packets the kernel may hold for us before it drops (default 65536). */
  maxlen?: number;
}

/** What the reader counted since it opened. */
export interface PacketQueueCounters {
  packets: number;
  delayed: number;
  held: number;
  dropped: number;
  /** Given back to the kernel (NF_ACCEPT) after being held. */
  released: number;
  /** TCP connections whose packets reached the queue (or were added as open at inject). */
  flows: number;
  /** Of those, stalled (hold) or reset (reset). */
  flowsHit: number;
  /** Of those reset, the ones whose peer socket was in this process's network namespace (our proxy, a host process): destroyed too. */
  peersClosed: number;
  flowsSpared: number;
  /** TCP payload bytes seen. */
  bytes: number;
  errors: number;
  lastError: number;
  /** Packets that carried the kernel's queueing time (NFQA_TIMESTAMP): held from then, the others from when they were read. */
  stamped: number;
  /** Time from the kernel queueing a stamped packet to our reading it, ms: sum and max. */
  readLagMsSum: number;
  readLagMsMax: number;
  /** delay: how late packets were given back after their due time, ms: sum and max. */
  lateMsSum: number;
  lateMsMax: number;
  /** delay: the timer's wake-up time after an idle wait, ms, as the reader learned it (it wakes that much early). */
  wakeMsMean: number;
  /** delay: time spent spinning from that early wake-up to the due time, ms (the CPU it costs). */
  spinMsSum: number;
}

/** A connection as the target sees it: addresses as text (dotted IPv4, or IPv6). */
export interface FlowTuple {
  local: string;
  localPort: number;
  remote: string;
  remotePort: number;
}

interface NativePacketQueue {
  stats(): PacketQueueCounters;
  addFlows(flows: [string, number, string, number][]): void;
  reset(policy?: Omit<PacketQueueOptions, 'netns' | 'queue' | 'maxlen'>): void;
  close(): void;
}

/** A policy for a reader that is already bound (reset). */
export type PacketQueuePolicy = Omit<PacketQueueOptions, 'netns' | 'queue' | 'maxlen'>;

export interface PacketQueue {
  readonly queue: number;
  stats(): PacketQueueCounters;
  /** Connections open before the fault: their afterMs clock starts now. */
  addFlows(flows: readonly FlowTuple[]): void;
  /**
   * Gives back every held packet and starts over (flows, counters), staying bound;
   * with a policy, that policy applies to every packet the reader reads from now on (not waited for: the
   * reader takes it before its next packet), without one it is waited for.
   */
  reset(policy?: PacketQueuePolicy): void;
  /** Gives back every held packet, then unbinds (idempotent). */
  close(): void;
}

// Queue numbers are per network namespace; spread ours by pid so that two
// processes injecting into one container rarely try the same one (EBUSY: next).
let nextQueue = 1000 + ((process.pid * 97) % 50_000);

/** A queue number to try next (a slot of the kept rules takes one for its life). */
export function freshQueueNumber(): number {
  const queue = nextQueue;
  nextQueue = nextQueue >= 65_000 ? 1000 : nextQueue + 1;
  return queue;
}

/** Binds a reader: on `opts.queue` (EBUSY if another process holds it), or on the next free number. */
export function openPacketQueue(opts: Omit<PacketQueueOptions, 'queue'> & { queue?: number }): PacketQueue {
  const addon = loadAddon() as unknown as { PacketQueue: new (o: PacketQueueOptions) => NativePacketQueue };
  const fixed = opts.queue;
  for (let tries = 0; ; tries++) {
    const queue = fixed ?? freshQueueNumber();
    try {
      const q = new addon.PacketQueue({ ...opts, queue });
      return {
        queue,
        stats: () => q.stats(),
        addFlows: (flows) => q.addFlows(flows.map((f) => [f.local, f.localPort, f.remote, f.remotePort])),
        reset: (policy) => q.reset(policy),
        close: () => q.close(),
      };
    } catch (err) {
      if ((err as { code?: string }).code !== 'EBUSY' || tries > 64 || fixed !== undefined) throw err;
    }
  }
}
