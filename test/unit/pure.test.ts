import { describe, expect, it } from 'vitest';
import { deriveSeed } from '../../src/contracts/seed.js';
import { checkCapabilities, effectiveCaps } from '../../src/api/preflight.js';
import { findCgroup2Mount, parseCgroup2Path } from '../../src/targets/cgroup-v2.js';
import { ipv4ToInt, intToIpv4 } from '../../src/kernel/kernel.js';
import { Chaos } from '../../src/api/chaos.js';
import { ChaosSpecError } from '../../src/contracts/errors.js';

describe('cgroup v2 discovery', () => {
  it('finds the cgroup2 mount on a hybrid host and on a pure v2 host', () => {
    const hybrid = [
      '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
      '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
      '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate',
    ].join('\n');
    expect(findCgroup2Mount(hybrid)).toBe('/sys/fs/cgroup/unified');
    expect(findCgroup2Mount('28 22 0:25 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw')).toBe('/sys/fs/cgroup');
    expect(findCgroup2Mount('32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu')).toBeNull();
  });

  it('reads the v2 path of a process', () => {
    expect(parseCgroup2Path('12:cpu:/docker/abc\n0::/docker/abc\n')).toBe('/docker/abc');
    expect(parseCgroup2Path('0::/\n')).toBe('/');
    expect(parseCgroup2Path('12:cpu:/docker/abc\n')).toBeNull();
  });
});

describe('seeds', () => {
  it('derive the same fault seed from the same run seed, test and position', () => {
    expect(deriveSeed(42, 'file::test', 1)).toBe(deriveSeed(42, 'file::test', 1));
    expect(deriveSeed(42, 'file::test', 1)).not.toBe(deriveSeed(42, 'file::test', 2));
    expect(deriveSeed(42, 'file::test', 1)).not.toBe(deriveSeed(43, 'file::test', 1));
    expect(deriveSeed(0, '')).toBeGreaterThan(0);
  });
});

describe('preflight', () => {
  it('names the capabilities that are missing and how to get them', () => {
    const p = checkCapabilities(0n, 1000);
    expect(p?.detail).toMatch(/^this process lacks CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN \(user 1000, not root\)/);
    expect(p?.fix).toMatch(/sudo/);
    expect(checkCapabilities((1n << 39n) | (1n << 12n) | (1n << 21n))).toBeNull();
    expect(effectiveCaps('Name:\tnode\nCapEff:\t000001ffffffffff\n')).toBe(0x1ffffffffffn);
  });
});

describe('IPv4 helpers', () => {
  it('round-trip and refuse what is not an address', () => {
    expect(intToIpv4(ipv4ToInt('172.17.0.2'))).toBe('172.17.0.2');
    expect(ipv4ToInt('255.255.255.255')).toBe(0xffffffff);
    expect(() => ipv4ToInt('1.2.3')).toThrow(/not an IPv4 address/);
    expect(() => ipv4ToInt('1.2.3.256')).toThrow(/not an IPv4 address/);
  });
});

describe('spec validation (no Docker, no kernel)', () => {
  const c = new Chaos({ seed: 1, preflight: { ok: true, problems: [] } });
  it('returns the parsed parameters with defaults filled in', () => {
    expect(c.validate({ kind: 'network-loss', target: 'x', percent: 5 })).toEqual({
      kind: 'network-loss',
      params: { percent: 5, direction: 'both' },
      targets: ['x'],
      mode: 'all',
    });
    expect(c.validate({ kind: 'network-partition', target: 'x' }).params).toEqual({ action: 'drop', direction: 'both' });
    expect(c.validate({ kind: 'network-latency', target: 'x', latencyMs: 50 }).params).toEqual({
      latencyMs: 50,
      jitterMs: 0,
      connections: 'all',
    });
  });
  it('lists every wrong field at once', () => {
    try {
      c.validate({ kind: 'network-loss', target: 'x', percent: -1, port: 0, seed: 1.5 } as never);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ChaosSpecError);
      const problems = (e as ChaosSpecError).problems.map((p) => p.field).sort();
      expect(problems).toEqual(['percent', 'port', 'seed']);
    }
  });
  it('refuses a spec that is not an object', () => {
    expect(() => c.validate(null as never)).toThrow(/spec is null; expected an object/);
  });
});
