// One loaded BPF object whose programs are attached once per target cgroup and
// hold up to VC_MAX_SLOTS (64) faults per cgroup as map entries. Injecting a second
// fault into a cgroup is therefore a map update. When the last slot of a cgroup
// is released its links stay for `lingerMs` (the programs pass everything: the
// cgroup has no slot in the map), so that a fault injected right after, as in a
// ramp or a loop, is a map update too (an attach and a detach cost 30-70 µs a
// program); releaseIdleLinks() takes them down at once (the end of a test file).
import { bpfObjectPath, loadAddon, type NativeLink, type NativeObject } from './addon.js';
import { checkConstants, structCodec, type StructCodec, type StructName, type StructValue } from './struct-codec.js';

export interface SlotRef {
  readonly cgroupId: bigint;
  readonly slot: number;
}

/** Attaches one program of the object where its slots live (a cgroup directory by default). */
export type SlotAttach = (object: NativeObject, program: string, where: string) => NativeLink;

const attachToCgroup: SlotAttach = (object, program, where) => object.attachCgroup(program, where);

export interface SlottedMaps {
  slots: string;
  rules: string;
  stats: string;
}

interface CgroupEntry {
  path: string;
  links: NativeLink[];
  /** The slots in use, as the kernel's __u64 bitmask. */
  mask: bigint;
  /** No slot in use: the links go when this fires (or at releaseIdleLinks). */
  idle?: NodeJS.Timeout;
}

/** Every object with links kept for a cgroup with no fault. */
const lingering = new Set<{ releaseIdle(): void }>();

/** Detaches every kept link of a cgroup with no fault in force now (the end of a test file, a leak check). */
export function releaseIdleLinks(): void {
  for (const p of lingering) p.releaseIdle();
}

const bit = (slot: number): bigint => 1n << BigInt(slot);

export class SlottedPrograms<R extends StructName, S extends StructName> {
  readonly object: NativeObject;
  readonly maxSlots: number;
  private readonly maskBytes: 4 | 8;
  readonly rule: StructCodec<R>;
  readonly stats: StructCodec<S>;
  private readonly key: StructCodec<'vc_slot_key'>;
  private readonly cgroups = new Map<bigint, CgroupEntry>();

  constructor(
    objectName: string,
    private readonly programs: readonly string[],
    private readonly maps: SlottedMaps,
    ruleStruct: R,
    statsStruct: S,
    /** How a program is attached; `where` is what acquire() got (default: a cgroup directory). */
    private readonly attach: SlotAttach = attachToCgroup,
    /** How long a cgroup's links stay once its last slot is released (0: detached at once). */
    private readonly lingerMs = 0,
  ) {
    this.object = new (loadAddon().BpfObject)(bpfObjectPath(objectName));
    checkConstants(this.object, objectName);
    const enums = this.object.enums();
    // An object may hold fewer slots than VC_MAX_SLOTS (enum vc_object_limits); up to 32 its
    // masks are __u32, past 32 __u64.
    const slots = enums.vc_object_limits?.VC_OBJECT_SLOTS ?? enums.vc_limits?.VC_MAX_SLOTS;
    if (slots === undefined) throw new Error(`bpf/${objectName}.bpf.o exports no VC_MAX_SLOTS`);
    this.maxSlots = slots;
    this.maskBytes = slots <= 32 ? 4 : 8;
    this.key = structCodec(this.object, 'vc_slot_key');
    this.rule = structCodec(this.object, ruleStruct);
    this.stats = structCodec(this.object, statsStruct);
  }

  /** Attaches to the cgroup if needed and reserves a free slot in it. */
  acquire(cgroupPath: string, cgroupId: bigint): SlotRef {
    let entry = this.cgroups.get(cgroupId);
    if (!entry) {
      const links: NativeLink[] = [];
      try {
        for (const p of this.programs) links.push(this.attach(this.object, p, cgroupPath));
      } catch (err) {
        for (const l of links) l.destroy();
        throw err;
      }
      entry = { path: cgroupPath, links, mask: 0n };
      this.cgroups.set(cgroupId, entry);
    }
    clearTimeout(entry.idle);
    entry.idle = undefined;
    for (let slot = 0; slot < this.maxSlots; slot++) {
      if (!(entry.mask & bit(slot))) {
        entry.mask |= bit(slot); // reserved; published to the kernel by enable()
        return { cgroupId, slot };
      }
    }
    if (entry.mask === 0n) this.detach(cgroupId);
    throw new Error(`cgroup ${cgroupPath} already holds ${this.maxSlots} faults of this kind; revert one before injecting another`);
  }

  /** Writes the rule and fresh counters, then makes the slot visible to the programs. */
  enable(ref: SlotRef, rule: Partial<StructValue<R>>, stats: Partial<StructValue<S>> = {}): void {
    const key = this.keyOf(ref);
    this.object.mapUpdate(this.maps.rules, key, this.rule.encode(rule));
    this.object.mapUpdate(this.maps.stats, key, this.stats.encode(stats));
    this.publishMask(ref.cgroupId);
  }

  readStats(ref: SlotRef): StructValue<S> | null {
    const buf = this.object.mapLookup(this.maps.stats, this.keyOf(ref));
    return buf ? this.stats.decode(buf) : null;
  }

  /** Hides the slot from the programs, returns its last counters, frees it. Idempotent. */
  release(ref: SlotRef): StructValue<S> | null {
    const entry = this.cgroups.get(ref.cgroupId);
    if (!entry || !(entry.mask & bit(ref.slot))) return null;
    entry.mask &= ~bit(ref.slot);
    this.publishMask(ref.cgroupId);
    const key = this.keyOf(ref);
    const last = this.readStats(ref);
    this.object.mapDelete(this.maps.rules, key);
    this.object.mapDelete(this.maps.stats, key);
    if (entry.mask === 0n) this.idleLater(ref.cgroupId, entry);
    return last;
  }

  /** Detaches the links of every cgroup with no slot in use. */
  releaseIdle(): void {
    for (const [id, entry] of this.cgroups) if (entry.mask === 0n) this.detach(id);
  }

  private idleLater(cgroupId: bigint, entry: CgroupEntry): void {
    if (this.lingerMs <= 0) {
      this.detach(cgroupId);
      return;
    }
    clearTimeout(entry.idle);
    entry.idle = setTimeout(() => this.detach(cgroupId), this.lingerMs);
    entry.idle.unref();
    lingering.add(this);
  }

  /** Attachments alive now, for tests and the leak check. */
  attachedCgroups(): string[] {
    return [...this.cgroups.values()].map((e) => e.path);
  }

  /** Attaches without taking a slot (the overhead benchmark's "attached, no fault"). */
  attachIdle(cgroupPath: string, cgroupId: bigint): () => void {
    const ref = this.acquire(cgroupPath, cgroupId);
    return () => {
      const entry = this.cgroups.get(cgroupId);
      if (!entry) return;
      entry.mask &= ~bit(ref.slot);
      if (entry.mask === 0n) this.detach(cgroupId);
    };
  }

  private publishMask(cgroupId: bigint): void {
    const entry = this.cgroups.get(cgroupId);
    const idKey = Buffer.alloc(8);
    idKey.writeBigUInt64LE(cgroupId);
    const mask = entry?.mask ?? 0n;
    if (mask === 0n) {
      this.object.mapDelete(this.maps.slots, idKey);
    } else {
      const v = Buffer.alloc(this.maskBytes);
      if (this.maskBytes === 4) v.writeUInt32LE(Number(mask));
      else v.writeBigUInt64LE(mask);
      this.object.mapUpdate(this.maps.slots, idKey, v);
    }
  }

  private detach(cgroupId: bigint): void {
    const entry = this.cgroups.get(cgroupId);
    if (!entry) return;
    clearTimeout(entry.idle);
    for (const l of entry.links) l.destroy();
    this.cgroups.delete(cgroupId);
    const idKey = Buffer.alloc(8);
    idKey.writeBigUInt64LE(cgroupId);
    this.object.mapDelete(this.maps.slots, idKey);
  }

  private keyOf(ref: SlotRef): Buffer {
    return this.key.encode({ cgroup_id: ref.cgroupId, slot: ref.slot });
  }
}
