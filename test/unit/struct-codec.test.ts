import { describe, expect, it } from 'vitest';
import type { StructLayout } from '../../src/kernel/addon.js';
import { codecOf } from '../../src/kernel/struct-codec.js';

// What the addon reads from BTF for struct vc_flow (bpf/connect.h).
const FLOW: StructLayout = {
  name: 'vc_flow',
  size: 48,
  fields: [
    { name: 'cgroup_id', offset: 0, size: 8, kind: 'u64' },
    { name: 'slot', offset: 8, size: 4, kind: 'u32' },
    { name: 'orig_addr', offset: 12, size: 4, kind: 'be32' },
    { name: 'orig_port', offset: 16, size: 2, kind: 'be16' },
    { name: 'pad', offset: 18, size: 2, kind: 'u16' },
    { name: 'pad2', offset: 20, size: 4, kind: 'u32' },
    { name: 'slots', offset: 24, size: 8, kind: 'u64' },
    { name: 'orig_addr6', offset: 32, size: 16, kind: 'bytes' },
  ],
};

describe('struct codec from a BTF layout', () => {
  it('writes host-order fields little-endian and __be fields in network order', () => {
    const c = codecOf('vc_flow', FLOW);
    const buf = c.encode({ cgroup_id: 0x0102030405060708n, slot: 3, orig_addr: 0x0a000001, orig_port: 8080, slots: (1n << 63n) | 0b1010n });
    expect(buf.toString('hex')).toBe(
      '0807060504030201' + '03000000' + '0a000001' + '1f90' + '0000' + '00000000' + '0a00000000000080' + '00'.repeat(16),
    );
    expect(c.decode(buf)).toEqual({
      cgroup_id: 0x0102030405060708n,
      slot: 3,
      orig_addr: 0x0a000001,
      orig_port: 8080,
      pad: 0,
      pad2: 0,
      slots: (1n << 63n) | 10n,
      orig_addr6: Buffer.alloc(16),
    });
  });

  it('refuses a field the header does not have, and a layout bpf-types.ts does not match', () => {
    const c = codecOf('vc_flow', FLOW);
    expect(() => c.encode({ nope: 1 } as never)).toThrow("struct vc_flow: no field 'nope' in the C header");
    const renamed = { ...FLOW, fields: FLOW.fields.map((f) => (f.name === 'slots' ? { ...f, name: 'mask' } : f)) };
    expect(() => codecOf('vc_flow', renamed)).toThrow(/has fields \[.*mask, orig_addr6\], TS expects \[.*slots, orig_addr6\].*make -C bpf/);
    const overrun = { ...FLOW, size: 22 };
    expect(() => codecOf('vc_flow', overrun)).toThrow('struct vc_flow.pad2: u32 at offset 20 overruns size 22');
    expect(() => c.decode(Buffer.alloc(8))).toThrow('struct vc_flow: expected 48 bytes, got 8');
  });
});
