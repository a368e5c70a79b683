// The syscall-signal object (bpf/syscall-signal.bpf.c, behind the
// crash-on-syscall fault): one tp_btf/sys_enter program for every target,
// attached while at least one fault holds a slot and detached with the last.
// Slots (rule + counters per target cgroup) are the same scheme as the cgroup
// programs', without per-cgroup attachments: the program filters by cgroup id.
import type { NativeLink } from './addon.js';
import { SlottedPrograms, type SlotRef } from './slotted-programs.js';
import type { StructValue } from './struct-codec.js';

export class SyscallSignalPrograms {
  readonly slots = new SlottedPrograms(
    'syscall-signal',
    [],
    { slots: 'sig_slots', rules: 'sig_rules', stats: 'sig_stats' },
    'vc_sig_rule',
    'vc_sig_stats',
  );
  private link?: NativeLink;

  /** Reserves a slot for the cgroup and makes sure the program is attached. */
  acquire(cgroupPath: string, cgroupId: bigint): SlotRef {
    const ref = this.slots.acquire(cgroupPath, cgroupId);
    try {
      this.link ??= this.slots.object.attach('vc_syscall_sig');
    } catch (err) {
      this.release(ref);
      throw err;
    }
    return ref;
  }

  enable(ref: SlotRef, rule: Partial<StructValue<'vc_sig_rule'>>, stats: Partial<StructValue<'vc_sig_stats'>>): void {
    this.slots.enable(ref, rule, stats);
  }

  readStats(ref: SlotRef): StructValue<'vc_sig_stats'> | null {
    return this.slots.readStats(ref);
  }

  /** Frees the slot; the last one out detaches the program. Idempotent. */
  release(ref: SlotRef): StructValue<'vc_sig_stats'> | null {
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
