// Chaos on ourselves: the addon or a BPF object missing or corrupt. The preflight
// names each file and what is wrong with it, and a test that injects is skipped
// with that reason (never run against a half-working kernel layer).
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkArtifacts, formatPreflight } from '../../src/api/preflight.js';
import { PreflightGate } from '../../src/api/preflight-gate.js';
import { bpfObjectPath, resolveAddon } from '../../src/kernel/addon.js';

describe('preflight: the addon and the BPF objects', () => {
  const root = mkdtempSync(join(tmpdir(), 'vc-artifacts-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('finds nothing wrong with this checkout', () => {
    expect(checkArtifacts()).toEqual([]);
  });

  it('names a corrupt addon, a truncated object, an object for another machine and the missing ones', async () => {
    mkdirSync(join(root, 'build', 'Release'), { recursive: true });
    mkdirSync(join(root, 'bpf'));
    writeFileSync(join(root, 'package.json'), '{"name":"vitest-chaos"}');
    writeFileSync(join(root, 'build', 'Release', 'vitest_chaos.node'), 'not a shared object');
    copyFileSync(bpfObjectPath('packet-drop'), join(root, 'bpf', 'packet-drop.bpf.o'));
    writeFileSync(join(root, 'bpf', 'connect.bpf.o'), readFileSync(bpfObjectPath('connect')).subarray(0, 10)); // truncated
    copyFileSync(resolveAddon(), join(root, 'bpf', 'dns.bpf.o')); // an x86-64 ELF file, not eBPF
    const problems = checkArtifacts(root);
    const text = formatPreflight({ ok: false, problems });
    expect(text).toMatch(/native addon: the native addon .*vitest_chaos\.node is not an ELF file \(19 bytes; corrupt or truncated\)/);
    expect(text).toContain('eBPF objects: bpf/syscall-signal.bpf.o, bpf/veth.bpf.o missing');
    expect(text).toMatch(/bpf\/connect\.bpf\.o is not an ELF file \(\d+ bytes; corrupt or truncated\)/);
    expect(text).toContain('bpf/dns.bpf.o is an ELF file for machine 62, not eBPF (247)');
    expect(text).not.toContain('packet-drop');
    expect(text).toContain('Fix: in a checkout: `bash scripts/setup.sh`');

    // A test that injects is skipped with that reason.
    const skipped: string[] = [];
    const test = {
      context: {
        skip(note?: string) {
          skipped.push(note ?? '');
        },
      },
    };
    await expect(new PreflightGate({ ok: false, problems }).require(test, 'network-loss')).rejects.toThrow(
      /bpf\/dns\.bpf\.o is an ELF file/,
    );
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toContain('vitest-chaos cannot inject faults on this machine:');
    expect(skipped[0]).toContain('vitest_chaos.node is not an ELF file');
  });
});
