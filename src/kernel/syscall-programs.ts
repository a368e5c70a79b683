// The crash-on-syscall object: one tp_btf/sys_enter program for every target,
// attached while at least one fault holds a slot and detached with the last.
// Slots (rule + counters per target cgroup) are the same scheme as the cgroup
// programs', without per-cgroup attachments: the program filters by cgroup id.
import type { NativeLink } from './addon.js';
import { SlottedPrograms, type SlotRef } from './slotted-programs.js';
import type { StructValue } from './struct-codec.js';

export const SYS_RULE = { nr: 'u32', signal: 'u32', threshold: 'u32', flags: 'u32', after_count: 'u64' } as const;
export const SYS_STATS = { matched: 'u64', signaled: 'u64', rng: 'u64' } as const;

export class SyscallPrograms {
  readonly slots = new SlottedPrograms(
    'crash',
    [],
    { slots: 'sys_slots', rules: 'sys_rules', stats: 'sys_stats' },
    ['vc_sys_rule', SYS_RULE],
    ['vc_sys_stats', SYS_STATS],
  );
  private link?: NativeLink;

  /** Reserves a slot for the cgroup and makes sure the program is attached. */
  acquire(cgroupPath: string, cgroupId: bigint): SlotRef {
    const ref = this.slots.acquire(cgroupPath, cgroupId);
    try {
      this.link ??= this.slots.object.attach('vc_sys_enter');
    } catch (err) {
      this.release(ref);
      throw err;
    }
    return ref;
  }

  enable(ref: SlotRef, rule: Partial<StructValue<typeof SYS_RULE>>, stats: Partial<StructValue<typeof SYS_STATS>>): void {
    this.slots.enable(ref, rule, stats);
  }

  readStats(ref: SlotRef): StructValue<typeof SYS_STATS> | null {
    return this.slots.readStats(ref);
  }

  /** Frees the slot; the last one out detaches the program. Idempotent. */
  release(ref: SlotRef): StructValue<typeof SYS_STATS> | null {
    const last = this.slots.release(ref);
    if (this.link && this.slots.attachedCgroups().length === 0) {
      this.link.destroy();
      this.link = undefined;
    }
    return last;
  }

  /** Whether the program is attached now (for tests and the leak check). */
  get attached(): boolean {
    return this.link?.alive ?? false;
  }
}
