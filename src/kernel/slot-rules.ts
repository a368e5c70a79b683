// What every slot-based fault (loss, partition, latency redirects, corrupt,
// duplicate, crash-on-syscall) does with its slots: enable them all or none,
// seed each slot's PRNG from the fault's seed, sum the counters of its slots,
// and keep each slot's last counters once released.
import type { SlotRef } from './slotted-programs.js';
import type { AppliedFault, FaultStats } from '../contracts/applied-fault.js';

const U32 = 0x1_0000_0000;

/** The programs act when their 32-bit draw is below this: `percent` of the draws. */
export function drawThreshold(percent: number): number {
  return Math.min(U32 - 1, Math.round((percent / 100) * U32));
}

/** A distinct, non-zero PRNG state for a fault's n-th slot (n from 1), all from its seed. */
export function slotRng(seed: number, n: number): bigint {
  return BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n + BigInt(n)) || 1n;
}

/** The slot operations of SlottedPrograms (and of the programs built on it). */
export interface SlotOwner<S> {
  acquire(path: string, id: bigint): SlotRef;
  release(ref: SlotRef): S | null;
  readStats(ref: SlotRef): S | null;
}

export interface HeldSlots<St extends object = FaultStats> extends AppliedFault<St> {
  refs: readonly SlotRef[];
}

export interface SlotPlace {
  /** Where the programs attach (a cgroup directory, or an ifindex as a string). */
  path: string;
  /** The key of the slot's map entries (cgroup id, or ifindex). */
  id: bigint;
}

/**
 * Acquires one slot per place and enables it with `enable` (n counts from 1);
 * if one fails, the slots already taken are released and the error rethrown.
 * stats() sums the keys of `zero` over the slots' counters.
 */
export function holdSlots<P extends SlotPlace, S, St extends object>(
  owner: SlotOwner<S>,
  places: readonly P[],
  enable: (ref: SlotRef, place: P, n: number) => void,
  toStats: (s: S) => St,
  zero: St,
): HeldSlots<St> {
  const refs: SlotRef[] = [];
  try {
    places.forEach((place, i) => {
      const ref = owner.acquire(place.path, place.id);
      refs.push(ref);
      enable(ref, place, i + 1);
    });
  } catch (err) {
    for (const r of refs) owner.release(r);
    throw err;
  }
  const final = new Map<SlotRef, St>();
  let released = false;
  return {
    refs,
    stats() {
      const sum = { ...zero } as FaultStats;
      for (const r of refs) {
        const last = final.get(r);
        const now = last ? null : owner.readStats(r);
        const s = (last ?? (now ? toStats(now) : {})) as FaultStats;
        for (const key of Object.keys(sum)) sum[key] = (sum[key] ?? 0) + (s[key] ?? 0);
      }
      return sum as St;
    },
    revert() {
      if (released) return;
      released = true;
      for (const r of refs) {
        const last = owner.release(r);
        if (last) final.set(r, toStats(last));
      }
    },
  };
}
