// Encodes and decodes the C structs of bpf/*.h. Offsets and sizes come from the
// addon (what the C compiler laid out from the shared header), so a header change
// that TS did not follow fails loudly at first use instead of corrupting a map.
import type { Layout } from './addon.js';

/** Host-order integers, and `be*` for fields the header says are in network order. */
export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | 'be32';

const WIDTH: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, u64: 8, be16: 2, be32: 4 };

type Value<T extends FieldType> = T extends 'u64' ? bigint : number;
export type StructValue<F extends Record<string, FieldType>> = { [K in keyof F]: Value<F[K]> };

export interface StructCodec<F extends Record<string, FieldType>> {
  readonly name: string;
  readonly size: number;
  encode(value: Partial<StructValue<F>>): Buffer;
  decode(buf: Buffer): StructValue<F>;
}

export function structCodec<F extends Record<string, FieldType>>(
  name: string,
  fields: F,
  layout: Layout | undefined,
): StructCodec<F> {
  if (!layout) throw new Error(`struct ${name}: the native addon reports no layout for it (rebuild native/)`);
  const entries = Object.entries(fields) as [keyof F & string, FieldType][];
  for (const [field, type] of entries) {
    const offset = layout[field];
    if (typeof offset !== 'number') throw new Error(`struct ${name}: no field '${field}' in the C header`);
    if (offset + WIDTH[type] > layout.size) {
      throw new Error(`struct ${name}.${field}: ${type} at offset ${offset} overruns size ${layout.size}`);
    }
  }
  const le = (buf: Buffer, type: FieldType, off: number, v: number | bigint): void => {
    switch (type) {
      case 'u8': buf.writeUInt8(Number(v), off); break;
      case 'u16': buf.writeUInt16LE(Number(v), off); break;
      case 'u32': buf.writeUInt32LE(Number(v) >>> 0, off); break;
      case 'u64': buf.writeBigUInt64LE(BigInt(v), off); break;
      case 'be16': buf.writeUInt16BE(Number(v), off); break;
      case 'be32': buf.writeUInt32BE(Number(v) >>> 0, off); break;
    }
  };
  return {
    name,
    size: layout.size,
    encode(value) {
      const buf = Buffer.alloc(layout.size);
      for (const [field, type] of entries) {
        const v = value[field];
        if (v !== undefined) le(buf, type, layout[field] as number, v as number | bigint);
      }
      return buf;
    },
    decode(buf) {
      const out: Record<string, number | bigint> = {};
      for (const [field, type] of entries) {
        const off = layout[field] as number;
        switch (type) {
          case 'u8': out[field] = buf.readUInt8(off); break;
          case 'u16': out[field] = buf.readUInt16LE(off); break;
          case 'u32': out[field] = buf.readUInt32LE(off); break;
          case 'u64': out[field] = buf.readBigUInt64LE(off); break;
          case 'be16': out[field] = buf.readUInt16BE(off); break;
          case 'be32': out[field] = buf.readUInt32BE(off); break;
        }
      }
      return out as StructValue<F>;
    },
  };
}
