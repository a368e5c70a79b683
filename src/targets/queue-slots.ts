// Kept rules: the packet data path's and the inbound proxies' fast way. A
// target's netns keeps, journaled once, per family (IPv4 and IPv6 tables):
// - mangle chains VC-S-O (from OUTPUT) and VC-S-I (from INPUT), a rule per
//   queue slot, and a reader of ours bound to each slot's queue (reset with
//   each fault's policy):
//     ! -o lo -p tcp -m bpf --object-pinned <slot's program> -j NFQUEUE --queue-num <slot's queue> --queue-bypass
// - a nat chain VC-S-P (from PREROUTING), a rule per redirect slot, and a
//   listener of ours in the netns for each (lent to one inbound proxy after
//   another):
//     -p tcp --syn -m bpf --object-pinned <slot's program> -j REDIRECT --to-ports <slot's listener>
// The slot's socket filter (bpf/queue-match.bpf.c) accepts what the fault in
// the slot covers, read from maps; so a fault is put in force by filling its
// slot and taken out by clearing it, a map update each, with no iptables commit
// (a commit, and the kernel's RCU wait for the rules it deleted, cost 10-50 ms).
// Where faults' scopes overlap the newest is in force, as with a chain per
// fault: each program also walks the netns's slots in force, newest first
// (qm_groups), and takes a packet only if no newer slot takes it; so any free
// slot is reused, and a rule is made only when all of the netns's are in use. The chains go when the netns has had no
// fault for LINGER_MS and no connection an inbound proxy relays (the nat chain
// keeps conntrack, hence the redirected connections' translation, alive), at the
// end of a test file (releaseIdleQueueSlots), at the process's natural end, or
// with the container; if we die, the queue rules pass everything (no reader:
// --queue-bypass) and the REDIRECTs are refused (no listener) until the next
// run's reaper deletes the journaled chains. Needs bpffs at /sys/fs/bpf (to hand
// iptables the program); without it the callers make a chain per fault.
import { closeSync, statfsSync, unlinkSync } from 'node:fs';
import type { Journal, JournalEntry } from '../journal/journal.js';
import type { Kernel } from '../kernel/kernel.js';
import { diagSocketInNetns, dupFd, listeningPorts, listenInNetns, tcpSockets } from '../kernel/netns-socket.js';
import { freshQueueNumber, openPacketQueue, type PacketQueue, type PacketQueuePolicy } from '../kernel/packet-queue.js';
import type { QueueMatchScope } from '../kernel/queue-match.js';
import { restore } from './restore-session.js';
import { keyedSerial } from './keyed-serial.js';
import { tcpTableOfSockets, type TcpTable } from './tcp-table.js';

const BPF_FS = '/sys/fs/bpf';
const BPF_FS_MAGIC = 0xcafe4a11;
const LINGER_MS = 1000;
export const KEPT_CHAINS = { output: 'VC-S-O', input: 'VC-S-I', redirect: 'VC-S-P' } as const;

type Use = 'queue' | 'redirect';

let bpffs: boolean | undefined;
/** Why kept rules cannot be made here, once the first try failed (a kernel without the iptables bpf match). */
let unavailable: string | undefined;
let madeOne = false;

/**
 * Whether the packet path uses kept rules: bpffs is mounted where iptables' bpf
 * match can take our programs from, the first rule could be made, and
 * VITEST_CHAOS_PACKET_RULES is not 'per-fault' (a chain per fault, as on a
 * kernel without the bpf match).
 */
export function keptRulesAvailable(): boolean {
  if (process.env.VITEST_CHAOS_PACKET_RULES === 'per-fault' || unavailable !== undefined) return false;
  if (bpffs === undefined) {
    try {
      bpffs = statfsSync(BPF_FS).type === BPF_FS_MAGIC;
    } catch {
      bpffs = false;
    }
  }
  return bpffs;
}

/** Why the packet path gave up on kept rules in this process (undefined: it did not). */
export function keptRulesFailure(): string | undefined {
  return unavailable;
}

interface Slot {
  index: number;
  use: Use;
  /** queue: its NFQUEUE number, and the reader bound at its first fault, kept until the rules go. */
  queue: number;
  reader?: PacketQueue;
  /** redirect: the listener its REDIRECT sends connections to, kept until the rules go. */
  listener?: { fd: number; port: number; ipv6: boolean };
  /** redirect: proxies on its listener that still relay connections (those handed back at revert too). */
  relaying: number;
  leased: boolean;
  /** Its queue number was taken by another process in this netns: never leased again. */
  lost: boolean;
}

interface Space {
  netns: string;
  containerId: string;
  /** Newest rule first (the order of the chains; which fault gets a packet is the group's order). */
  slots: Record<Use, Slot[]>;
  entries: Partial<Record<Use, JournalEntry>>;
  /** The families the nat chain is in (IPv6 when the listener is dual-stack). */
  redirectFamilies: (4 | 6)[];
  /** Its group in the slot programs' maps, and its slots in force, newest first. */
  group: number;
  inForce: number[];
  journal?: Journal;
  /** A sock_diag socket of the netns (targetListeningPorts), kept with the rules. */
  diag?: number;
  timer?: NodeJS.Timeout;
}

const spaces = new Map<string, Space>();
let exitHook: (() => void) | undefined;
const freeIndices: number[] = [];
let nextIndex = 0;
const freeGroups: number[] = [];
let nextGroup = 0;

/** What both kinds of slot do: put a scope in force (newest of its netns first), and take it out. */
export interface InForce {
  readonly index: number;
  /** Fills the slot: the scope is in force, ahead of older slots of the netns where they overlap. */
  activate(scope: QueueMatchScope): void;
  /** Clears the slot: nothing more is queued or redirected for it (its map entries deleted). */
  deactivate(): void;
}

export interface QueueSlot extends InForce {
  readonly queue: number;
  /**
   * The slot's reader with this policy: bound now (EBUSY if another process holds the
   * queue number in this netns: the slot is then never leased again), or reset.
   */
  reader(policy: PacketQueuePolicy): PacketQueue;
  /** Every held packet goes on; the slot is free again (its map entries cleared by the caller first). */
  release(): void;
}

export interface RedirectSlot extends InForce {
  /** The kept listener's port in the netns, and whether it takes IPv6 too. */
  readonly port: number;
  readonly ipv6: boolean;
  /** A descriptor of the kept listener for a proxy to own (and close when it stops accepting). */
  listenerFd(): number;
  /** The slot is free again (its map entries cleared by the caller first); `relayed` resolves when its proxy's last connection ended. */
  release(relayed: Promise<unknown>): void;
}

function inForce(k: Kernel, space: Space, slot: Slot): InForce {
  const qm = k.queueMatch;
  let active = false;
  return {
    index: slot.index,
    activate(scope) {
      qm.activate(slot.index, space.group, scope);
      space.inForce = [slot.index, ...space.inForce.filter((i) => i !== slot.index)];
      qm.order(space.group, space.inForce);
      active = true;
    },
    deactivate() {
      qm.clear(slot.index);
      if (!active) return;
      active = false;
      space.inForce = space.inForce.filter((i) => i !== slot.index);
      qm.order(space.group, space.inForce);
    },
  };
}

/**
 * Structural changes of a netns's rules (a new rule, the teardown) one at a time, by
 * netns: a space made while the last one's teardown is still deleting the chains waits.
 */
const serialized = keyedSerial();

const busy = (space: Space) => [...space.slots.queue, ...space.slots.redirect].some((s) => s.leased || s.relaying > 0);

/** Schedules the teardown once nothing of the netns's slots is in use. */
function idleLater(space: Space): void {
  if (busy(space)) return;
  clearTimeout(space.timer);
  space.timer = setTimeout(() => void teardown(space).catch(() => undefined), LINGER_MS);
  space.timer.unref();
}

function spaceOf(spec: { containerId: string; netns: string }): Space {
  if (!exitHook) {
    // A process that ends on its own (no test runner's end-of-file hook) takes its idle kept rules down first.
    exitHook = () => void releaseIdleQueueSlots();
    process.on('beforeExit', exitHook);
  }
  let space = spaces.get(spec.netns);
  if (!space) {
    space = {
      netns: spec.netns,
      containerId: spec.containerId,
      slots: { queue: [], redirect: [] },
      entries: {},
      redirectFamilies: [4],
      group: freeGroups.pop() ?? nextGroup++,
      inForce: [],
    };
    spaces.set(spec.netns, space);
  }
  clearTimeout(space.timer);
  return space;
}

/** A free slot of this use, if there is one: it is leased. (Which one does not matter: the group's order says which fault gets a packet.) */
function reuse(space: Space, use: Use): Slot | undefined {
  const slot = space.slots[use].find((x) => !x.leased && !x.lost);
  if (slot) slot.leased = true;
  return slot;
}

/**
 * A queue slot of the netns's kept rules for one fault: a free one, else a new
 * rule (the netns's first one also makes the chains and journals them).
 */
export async function leaseQueueSlot(k: Kernel, spec: { containerId: string; netns: string }, journal: Journal): Promise<QueueSlot> {
  const space = spaceOf(spec);
  const slot = reuse(space, 'queue') ?? (await serialized(space.netns, () => newSlot(k, space, 'queue', journal)));
  let done = false;
  return {
    ...inForce(k, space, slot),
    queue: slot.queue,
    reader(policy) {
      if (slot.reader) {
        slot.reader.reset(policy);
        return slot.reader;
      }
      try {
        slot.reader = openPacketQueue({ ...policy, netns: space.netns, queue: slot.queue });
      } catch (err) {
        if ((err as { code?: string }).code === 'EBUSY') slot.lost = true;
        throw err;
      }
      return slot.reader;
    },
    release() {
      if (done) return;
      done = true;
      slot.reader?.reset();
      slot.leased = false;
      idleLater(space);
    },
  };
}

/** A redirect slot of the netns's kept rules for one inbound proxy (as leaseQueueSlot). */
export async function leaseRedirectSlot(k: Kernel, spec: { containerId: string; netns: string }, journal: Journal): Promise<RedirectSlot> {
  const space = spaceOf(spec);
  const slot = reuse(space, 'redirect') ?? (await serialized(space.netns, () => newSlot(k, space, 'redirect', journal)));
  const listener = slot.listener as { fd: number; port: number; ipv6: boolean };
  slot.relaying++;
  let done = false;
  return {
    ...inForce(k, space, slot),
    port: listener.port,
    ipv6: listener.ipv6,
    listenerFd: () => dupFd(listener.fd),
    release(relayed) {
      if (done) return;
      done = true;
      slot.leased = false;
      void relayed.finally(() => {
        slot.relaying--;
        idleLater(space);
      });
    },
  };
}

async function newSlot(k: Kernel, s: Space, use: Use, journal: Journal): Promise<Slot> {
  const index = freeIndices.pop() ?? nextIndex++;
  if (index >= k.queueMatch.slots) {
    nextIndex = Math.min(nextIndex, k.queueMatch.slots);
    throw new Error(`the packet path holds at most ${k.queueMatch.slots} faults at once in a process`);
  }
  const slot: Slot = { index, use, queue: use === 'queue' ? freshQueueNumber() : 0, relaying: 0, leased: true, lost: false };
  let paths: string[] = [];
  let pinned: { done(): void } | undefined;
  try {
    const pin = k.queueMatch.pin(index, `${BPF_FS}/vitest-chaos-${process.pid}-${index}`, use);
    pinned = pin;
    paths = pin.paths;
    if (use === 'redirect') {
      slot.listener = listenInNetns(s.netns);
      if (s.slots.redirect.length === 0 && !s.entries.redirect) s.redirectFamilies = slot.listener.ipv6 ? [4, 6] : [4];
    }
    const families = use === 'queue' ? ([4, 6] as const) : s.redirectFamilies;
    const first = !s.entries[use];
    if (first) {
      s.journal = journal;
      const chains = use === 'queue' ? [KEPT_CHAINS.output, KEPT_CHAINS.input] : [KEPT_CHAINS.redirect];
      s.entries[use] = journal.record(
        `${use === 'queue' ? 'packet path' : 'inbound proxy'} rules in ${s.netns}`,
        families.flatMap((family) =>
          chains.map((chain) => ({
            type: 'iptables-chain-del' as const,
            containerId: s.containerId,
            netns: s.netns,
            chain,
            ...(family === 6 ? { family: 6 as const } : {}),
          })),
        ),
      );
    }
    try {
      await Promise.all(families.map((f) => restore(s.netns, f, rulesText(slot, paths, first))));
    } catch (err) {
      const entry = s.entries[use];
      if (first && entry) {
        s.entries[use] = undefined;
        await journal.revert(entry).catch(() => undefined);
      }
      // The process's first rule could not be made: none will (no bpf match in this kernel's iptables, or no
      // bpffs for it); the callers go back to a chain per fault.
      if (!madeOne) unavailable = (err as Error).message;
      throw err;
    }
  } catch (err) {
    freeIndices.push(index);
    if (slot.listener) closeSync(slot.listener.fd);
    throw err;
  } finally {
    for (const p of paths) {
      try {
        unlinkSync(p);
      } catch {
        // not pinned
      }
    }
    pinned?.done();
  }
  madeOne = true;
  s.slots[use].unshift(slot);
  return slot;
}

function rulesText(slot: Slot, paths: string[], chains: boolean): string {
  if (slot.use === 'redirect') {
    const c = KEPT_CHAINS.redirect;
    return [
      '*nat',
      ...(chains ? [`:${c} - [0:0]`] : []),
      `-I ${c} 1 -p tcp --syn -m bpf --object-pinned ${paths[0]} -j REDIRECT --to-ports ${slot.listener?.port}`,
      ...(chains ? [`-I PREROUTING 1 -j ${c}`] : []),
      'COMMIT',
      '',
    ].join('\n');
  }
  const q = `-j NFQUEUE --queue-num ${slot.queue} --queue-bypass`;
  const lines = ['*mangle'];
  if (chains) lines.push(`:${KEPT_CHAINS.output} - [0:0]`, `:${KEPT_CHAINS.input} - [0:0]`);
  lines.push(
    `-I ${KEPT_CHAINS.output} 1 ! -o lo -p tcp -m bpf --object-pinned ${paths[0]} ${q}`,
    `-I ${KEPT_CHAINS.input} 1 ! -i lo -p tcp -m bpf --object-pinned ${paths[1]} ${q}`,
  );
  if (chains) lines.push(`-I OUTPUT 1 -j ${KEPT_CHAINS.output}`, `-I INPUT 1 -j ${KEPT_CHAINS.input}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

async function teardown(space: Space): Promise<void> {
  await serialized(space.netns, async () => {
    if (busy(space) || spaces.get(space.netns) !== space) return;
    spaces.delete(space.netns);
    const journal = space.journal;
    const drops: [Use, (4 | 6)[], string][] = [
      [
        'queue',
        [4, 6],
        `-D OUTPUT -j ${KEPT_CHAINS.output}\n-F ${KEPT_CHAINS.output}\n-X ${KEPT_CHAINS.output}\n-D INPUT -j ${KEPT_CHAINS.input}\n-F ${KEPT_CHAINS.input}\n-X ${KEPT_CHAINS.input}`,
      ],
      [
        'redirect',
        space.redirectFamilies,
        `-D PREROUTING -j ${KEPT_CHAINS.redirect}\n-F ${KEPT_CHAINS.redirect}\n-X ${KEPT_CHAINS.redirect}`,
      ],
    ];
    for (const [use, families, text] of drops) {
      const entry = space.entries[use];
      if (!entry || !journal) continue;
      space.entries[use] = undefined;
      const table = use === 'queue' ? 'mangle' : 'nat';
      const done = await Promise.allSettled(families.map((f) => restore(space.netns, f, `*${table}\n${text}\nCOMMIT\n`)));
      // The netns gone (the container ended) or a jump missing: the journal's undo, which knows gone from failed.
      if (done.some((d) => d.status === 'rejected')) await journal.revert(entry);
      else journal.forget(entry);
    }
    if (space.diag !== undefined) closeSync(space.diag);
    space.diag = undefined;
    freeGroups.push(space.group);
    for (const s of [...space.slots.queue, ...space.slots.redirect]) {
      s.reader?.close();
      if (s.listener) closeSync(s.listener.fd);
      freeIndices.push(s.index);
    }
  });
}

/** The netns's space and its kept sock_diag socket. */
function diagOf(spec: { containerId: string; netns: string }): { space: Space; fd: number } {
  const space = spaceOf(spec);
  space.diag ??= diagSocketInNetns(spec.netns);
  return { space, fd: space.diag };
}

/**
 * The TCP ports the target listens on in its netns (sock_diag, on a socket of
 * that netns kept with its rules), less our kept listeners there.
 */
export function targetListeningPorts(spec: { containerId: string; netns: string }): number[] {
  const { space, fd } = diagOf(spec);
  const ours = new Set(space.slots.redirect.map((s) => s.listener?.port));
  const ports = listeningPorts(fd).filter((p) => !ours.has(p));
  idleLater(space);
  return ports;
}

/**
 * The target's TCP table (listening ports, open connections) by sock_diag on the
 * same kept socket: 0.3-0.4 ms here (the kernel still walks the host's whole
 * established-connection hash for it, but formats nothing), where
 * /proc/<pid>/net/tcp takes 2-4 ms. As there, our kept listeners' ports are
 * listed, so the connections they accepted are inbound (the callers tell their
 * proxies' apart).
 */
export function targetTcpTable(spec: { containerId: string; netns: string }): TcpTable {
  const { space, fd } = diagOf(spec);
  const table = tcpTableOfSockets(tcpSockets(fd));
  idleLater(space);
  return table;
}

/** Deletes the kept rules of every netns with no fault in force and no relayed connection (the end of a test file). */
export async function releaseIdleQueueSlots(): Promise<void> {
  const idle = [...spaces.values()].filter((s) => !busy(s));
  for (const s of idle) clearTimeout(s.timer);
  await Promise.allSettled(idle.map(teardown));
}
