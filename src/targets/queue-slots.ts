// Kept NFQUEUE rules: the packet data path's fast way. A target's netns gets
// one chain per hook and family (VC-S-O from mangle OUTPUT, VC-S-I from INPUT,
// in the IPv4 and IPv6 tables), journaled once, holding a rule per slot, and
// a reader of ours bound to each slot's queue (reset with each fault's policy):
//   ! -o lo -p tcp -m bpf --object-pinned <slot's program> -j NFQUEUE --queue-num <slot's queue> --queue-bypass
// The slot's socket filter (bpf/queue-match.bpf.c) accepts what the fault in
// the slot covers, read from maps; so a fault is put in force by filling its
// slot and taken out by clearing it, a map update each, with no iptables commit
// (a commit, and the kernel's RCU wait for the rules it deleted, cost 10-50 ms).
// Rules are made newest-first: a packet goes to the first slot that accepts it
// (its reader's verdict ends the hook), so a slot is reused only while no slot
// above it is in use, and the newest fault wins where scopes overlap, as with a
// chain per fault. The chains go when the netns has had no fault for LINGER_MS,
// at the end of a test file (releaseIdleQueueSlots), or with the container; if
// we die, the rules pass everything (no reader: --queue-bypass) until the next
// run's reaper deletes the journaled chains. Needs bpffs at /sys/fs/bpf (to hand
// iptables the program); without it the packet path makes a chain per fault.
import { statfsSync, unlinkSync } from 'node:fs';
import type { Journal, JournalEntry } from '../journal/journal.js';
import type { Kernel } from '../kernel/kernel.js';
import { freshQueueNumber, openPacketQueue, type PacketQueue, type PacketQueuePolicy } from '../kernel/packet-queue.js';
import { restore } from './restore-session.js';

const BPF_FS = '/sys/fs/bpf';
const BPF_FS_MAGIC = 0xcafe4a11;
const LINGER_MS = 1000;
export const KEPT_CHAINS = { output: 'VC-S-O', input: 'VC-S-I' } as const;

let bpffs: boolean | undefined;
/** Whether bpffs is mounted where iptables' bpf match can take our programs from. */
export function keptRulesAvailable(): boolean {
  if (bpffs === undefined) {
    try {
      bpffs = statfsSync(BPF_FS).type === BPF_FS_MAGIC;
    } catch {
      bpffs = false;
    }
  }
  return bpffs;
}

interface Slot {
  index: number;
  queue: number;
  /** Bound at the slot's first fault, kept until the rules go. */
  reader?: PacketQueue;
  leased: boolean;
  /** Its queue number was taken by another process in this netns: never leased again. */
  lost: boolean;
}

interface Space {
  netns: string;
  containerId: string;
  /** Top of the chains first. */
  slots: Slot[];
  entry?: JournalEntry;
  journal?: Journal;
  timer?: NodeJS.Timeout;
  /** Structural changes (a new rule, the teardown) one at a time. */
  chain: Promise<unknown>;
}

const spaces = new Map<string, Space>();
let exitHook: (() => void) | undefined;
const freeIndices: number[] = [];
let nextIndex = 0;

export interface QueueSlot {
  readonly index: number;
  readonly queue: number;
  /**
   * The slot's reader with this policy: bound now (EBUSY if another process holds the
   * queue number in this netns: the slot is then never leased again), or reset.
   */
  reader(policy: PacketQueuePolicy): PacketQueue;
  /** Every held packet goes on; the slot is free again (its map entries cleared by the caller first). */
  release(): void;
}

function serialized<T>(space: Space, fn: () => Promise<T>): Promise<T> {
  const next = space.chain.then(fn, fn);
  space.chain = next.catch(() => undefined);
  return next;
}

function lease(space: Space, slot: Slot): QueueSlot {
  slot.leased = true;
  let done = false;
  return {
    index: slot.index,
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
      if (!space.slots.some((s) => s.leased)) {
        clearTimeout(space.timer);
        space.timer = setTimeout(() => void teardown(space).catch(() => undefined), LINGER_MS);
        space.timer.unref();
      }
    },
  };
}

/**
 * A slot of the netns's kept rules for one fault: a free one above every slot
 * in use, else a new rule at the top (the netns's first one also makes the
 * chains and journals them).
 */
export async function leaseQueueSlot(k: Kernel, spec: { containerId: string; netns: string }, journal: Journal): Promise<QueueSlot> {
  if (!exitHook) {
    // A process that ends on its own (no test runner's end-of-file hook) takes its idle kept rules down first.
    exitHook = () => void releaseIdleQueueSlots();
    process.on('beforeExit', exitHook);
  }
  let space = spaces.get(spec.netns);
  if (!space) {
    space = { netns: spec.netns, containerId: spec.containerId, slots: [], chain: Promise.resolve() };
    spaces.set(spec.netns, space);
  }
  clearTimeout(space.timer);
  const s = space;
  for (const slot of s.slots) {
    if (slot.leased) break;
    if (!slot.lost) return lease(s, slot);
  }
  return serialized(s, async () => {
    // Another lease may have made one meanwhile: the new rule goes above whatever is in use now.
    const index = freeIndices.pop() ?? nextIndex++;
    if (index >= k.queueMatch.slots) {
      nextIndex = Math.min(nextIndex, k.queueMatch.slots);
      throw new Error(`the packet path holds at most ${k.queueMatch.slots} faults at once in a process`);
    }
    const slot: Slot = { index, queue: freshQueueNumber(), leased: true, lost: false };
    const prefix = `${BPF_FS}/vitest-chaos-${process.pid}-${index}`;
    let paths: { output: string; input: string } | undefined;
    try {
      paths = k.queueMatch.pin(index, prefix);
      if (!s.entry) {
        s.journal = journal;
        s.entry = journal.record(
          `packet path rules in ${s.netns}`,
          ([4, 6] as const).flatMap((family) =>
            Object.values(KEPT_CHAINS).map((chain) => ({
              type: 'iptables-chain-del' as const,
              containerId: s.containerId,
              netns: s.netns,
              chain,
              ...(family === 6 ? { family: 6 as const } : {}),
            })),
          ),
        );
        try {
          await Promise.all(
            ([4, 6] as const).map((f) => restore(s.netns, f, rulesText(slot, paths as { output: string; input: string }, true))),
          );
        } catch (err) {
          const entry = s.entry;
          s.entry = undefined;
          await journal.revert(entry).catch(() => undefined);
          throw err;
        }
      } else {
        await Promise.all(
          ([4, 6] as const).map((f) => restore(s.netns, f, rulesText(slot, paths as { output: string; input: string }, false))),
        );
      }
    } catch (err) {
      freeIndices.push(index);
      throw err;
    } finally {
      for (const p of paths ? [paths.output, paths.input] : [`${prefix}-o`, `${prefix}-i`]) {
        try {
          unlinkSync(p);
        } catch {
          // not pinned
        }
      }
    }
    s.slots.unshift(slot);
    return lease(s, slot);
  });
}

function rulesText(slot: Slot, paths: { output: string; input: string }, chains: boolean): string {
  const q = `-j NFQUEUE --queue-num ${slot.queue} --queue-bypass`;
  const lines = ['*mangle'];
  if (chains) lines.push(`:${KEPT_CHAINS.output} - [0:0]`, `:${KEPT_CHAINS.input} - [0:0]`);
  lines.push(
    `-I ${KEPT_CHAINS.output} 1 ! -o lo -p tcp -m bpf --object-pinned ${paths.output} ${q}`,
    `-I ${KEPT_CHAINS.input} 1 ! -i lo -p tcp -m bpf --object-pinned ${paths.input} ${q}`,
  );
  if (chains) lines.push(`-I OUTPUT 1 -j ${KEPT_CHAINS.output}`, `-I INPUT 1 -j ${KEPT_CHAINS.input}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

async function teardown(space: Space): Promise<void> {
  await serialized(space, async () => {
    if (space.slots.some((s) => s.leased) || spaces.get(space.netns) !== space) return;
    spaces.delete(space.netns);
    const entry = space.entry;
    space.entry = undefined;
    if (entry && space.journal) {
      const text = ['*mangle'];
      for (const [hook, chain] of [
        ['OUTPUT', KEPT_CHAINS.output],
        ['INPUT', KEPT_CHAINS.input],
      ] as const) {
        text.push(`-D ${hook} -j ${chain}`, `-F ${chain}`, `-X ${chain}`);
      }
      text.push('COMMIT', '');
      const done = await Promise.allSettled(([4, 6] as const).map((f) => restore(space.netns, f, text.join('\n'))));
      // The netns gone (the container ended) or a jump missing: the journal's undo, which knows gone from failed.
      if (done.some((d) => d.status === 'rejected')) await space.journal.revert(entry);
      else space.journal.forget(entry);
    }
    for (const s of space.slots) {
      s.reader?.close();
      freeIndices.push(s.index);
    }
  });
}

/** Deletes the kept rules of every netns with no fault in force (the end of a test file). */
export async function releaseIdleQueueSlots(): Promise<void> {
  const idle = [...spaces.values()].filter((s) => !s.slots.some((x) => x.leased));
  for (const s of idle) clearTimeout(s.timer);
  await Promise.allSettled(idle.map(teardown));
}
