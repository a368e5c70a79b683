// Encodes and decodes the C structs of bpf/*.h. Offsets, widths and byte order
// come from the loaded object's BTF (what the compiler laid out from the header;
// a __be16/__be32 typedef means network order), the TS value types from
// bpf-types.ts, generated from the same BTF; so the header is the only
// declaration, and a header change TS did not follow fails at first use.
import type { NativeObject, StructLayout } from './addon.js';
import { BPF_CONSTANTS, BPF_STRUCT_FIELDS, type BpfStructs } from './bpf-types.js';

export type StructName = keyof BpfStructs;
export type StructValue<N extends StructName> = BpfStructs[N];

export interface StructCodec<N extends StructName> {
  readonly name: N;
  readonly size: number;
  /** Fields left out are zero. */
  encode(value: Partial<StructValue<N>>): Buffer;
  decode(buf: Buffer): StructValue<N>;
}

const STALE = 'src/kernel/bpf-types.ts does not match the built objects: run `make -C bpf` and rebuild';

/** The codec of struct `name` as laid out in `object`'s BTF. */
export function structCodec<N extends StructName>(object: NativeObject, name: N): StructCodec<N> {
  return codecOf(name, object.structLayout(name));
}

/** The codec for a given layout (what structCodec reads from BTF). */
export function codecOf<N extends StructName>(name: N, layout: StructLayout): StructCodec<N> {
  const expected = BPF_STRUCT_FIELDS[name] as readonly string[];
  const names = layout.fields.map((f) => f.name);
  if (names.join() !== expected.join()) {
    throw new Error(`struct ${name}: the object has fields [${names.join(', ')}], TS expects [${expected.join(', ')}]: ${STALE}`);
  }
  const fields = new Map(layout.fields.map((f) => [f.name, f]));
  for (const f of layout.fields) {
    if (f.offset + f.size > layout.size) {
      throw new Error(`struct ${name}.${f.name}: ${f.kind} at offset ${f.offset} overruns size ${layout.size}`);
    }
  }
  const write = (buf: Buffer, kind: string, off: number, size: number, v: unknown, field: string): void => {
    switch (kind) {
      case 'u8':
        return void buf.writeUInt8(Number(v), off);
      case 'i8':
        return void buf.writeInt8(Number(v), off);
      case 'u16':
        return void buf.writeUInt16LE(Number(v), off);
      case 'i16':
        return void buf.writeInt16LE(Number(v), off);
      case 'u32':
        return void buf.writeUInt32LE(Number(v) >>> 0, off);
      case 'i32':
        return void buf.writeInt32LE(Number(v), off);
      case 'u64':
        return void buf.writeBigUInt64LE(BigInt(v as bigint), off);
      case 'i64':
        return void buf.writeBigInt64LE(BigInt(v as bigint), off);
      case 'be16':
        return void buf.writeUInt16BE(Number(v), off);
      case 'be32':
        return void buf.writeUInt32BE(Number(v) >>> 0, off);
      case 'be64':
        return void buf.writeBigUInt64BE(BigInt(v as bigint), off);
      case 'bytes': {
        const b = v as Buffer;
        if (!Buffer.isBuffer(b) || b.length > size) throw new Error(`struct ${name}.${field}: expected a Buffer of at most ${size} bytes`);
        return void b.copy(buf, off);
      }
    }
    throw new Error(`struct ${name}.${field}: unknown field kind ${kind}`);
  };
  const read = (buf: Buffer, kind: string, off: number, size: number): number | bigint | Buffer => {
    switch (kind) {
      case 'u8':
        return buf.readUInt8(off);
      case 'i8':
        return buf.readInt8(off);
      case 'u16':
        return buf.readUInt16LE(off);
      case 'i16':
        return buf.readInt16LE(off);
      case 'u32':
        return buf.readUInt32LE(off);
      case 'i32':
        return buf.readInt32LE(off);
      case 'u64':
        return buf.readBigUInt64LE(off);
      case 'i64':
        return buf.readBigInt64LE(off);
      case 'be16':
        return buf.readUInt16BE(off);
      case 'be32':
        return buf.readUInt32BE(off);
      case 'be64':
        return buf.readBigUInt64BE(off);
      case 'bytes':
        return Buffer.from(buf.subarray(off, off + size));
    }
    throw new Error(`struct ${name}: unknown field kind ${kind}`);
  };
  return {
    name,
    size: layout.size,
    encode(value) {
      const buf = Buffer.alloc(layout.size);
      for (const [field, v] of Object.entries(value)) {
        if (v === undefined) continue;
        const f = fields.get(field);
        if (!f) throw new Error(`struct ${name}: no field '${field}' in the C header`);
        write(buf, f.kind, f.offset, f.size, v, field);
      }
      return buf;
    },
    decode(buf) {
      if (buf.length !== layout.size) throw new Error(`struct ${name}: expected ${layout.size} bytes, got ${buf.length}`);
      const out: Record<string, unknown> = {};
      for (const f of layout.fields) out[f.name] = read(buf, f.kind, f.offset, f.size);
      return out as StructValue<N>;
    },
  };
}

/** Fails when an enum constant of the object differs from bpf-types.ts (a stale build). */
export function checkConstants(object: NativeObject, objectName: string): void {
  // Only our headers' enums (vc_*): an object that reads kernel structs also carries the kernel's.
  for (const [name, values] of Object.entries(object.enums())) {
    if (!name.startsWith('vc_')) continue;
    for (const [k, v] of Object.entries(values)) {
      const ours = (BPF_CONSTANTS as Record<string, number>)[k];
      if (ours !== v) throw new Error(`bpf/${objectName}.bpf.o: ${k} is ${v}, TS has ${ours}: ${STALE}`);
    }
  }
}
