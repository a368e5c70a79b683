// The preflight's detection, on the facts each kind of machine reports (the engine's /info
// and /version, the kernel release, capabilities). On this machine for real: test/integration/preflight-here.test.ts.
import { describe, expect, it } from 'vitest';
import {
  checkBtf,
  checkCapabilities,
  checkEngine,
  checkKernel,
  KERNEL_MECHANISMS,
  kindsUnavailableOn,
  parseKernelRelease,
} from '../../src/api/preflight.js';
import { faultKinds } from '../../src/faults/kinds.js';

const linux = { platform: 'linux' as const, kernelRelease: '6.1.0-18-amd64' };
const docker = {
  operatingSystem: 'Debian GNU/Linux 12 (bookworm)',
  kernelVersion: '6.1.0-18-amd64',
  securityOptions: ['name=seccomp,profile=default'],
  components: ['Engine'],
};

describe('preflight: the engine', () => {
  it('accepts a rootful Docker Engine on this kernel', () => {
    expect(checkEngine(docker, linux)).toBeNull();
  });

  it('names Docker Desktop on macOS and Windows: the engine is in a VM', () => {
    const desktop = {
      operatingSystem: 'Docker Desktop',
      kernelVersion: '6.10.14-linuxkit',
      securityOptions: ['name=seccomp,profile=unconfined', 'name=cgroupns'],
      components: ['Engine'],
    };
    for (const platform of ['darwin', 'win32'] as const) {
      const p = checkEngine(desktop, { platform, kernelRelease: platform === 'darwin' ? '24.1.0' : '10.0.22631' });
      expect(p?.detail).toContain('Docker Desktop runs its engine in a VM');
      expect(p?.detail).toContain(`(this is ${platform})`);
      expect(p?.fix).toContain('--privileged --pid=host');
    }
  });

  it('names Docker Desktop for Linux (also a VM), by its OperatingSystem or its linuxkit kernel', () => {
    expect(checkEngine({ ...docker, operatingSystem: 'Docker Desktop' }, linux)?.detail).toContain(
      'Docker Desktop runs its engine in a VM',
    );
    expect(checkEngine({ ...docker, kernelVersion: '6.6.32-linuxkit' }, linux)?.requirement).toBe('Docker engine on this kernel');
  });

  it('names rootless Docker and rootless Podman, with the rootful fix for each', () => {
    const rootless = checkEngine({ ...docker, securityOptions: ['name=seccomp,profile=default', 'name=rootless', 'name=cgroupns'] }, linux);
    expect(rootless?.requirement).toBe('rootful container engine');
    expect(rootless?.detail).toMatch(/^the Docker engine is rootless/);
    expect(rootless?.fix).toContain('systemctl start docker');
    const podman = checkEngine(
      {
        ...docker,
        operatingSystem: 'fedora',
        components: ['Podman Engine'],
        securityOptions: ['name=rootless', 'name=seccomp,profile=/usr/share/containers/seccomp.json'],
      },
      linux,
    );
    expect(podman?.detail).toMatch(/^the Podman engine is rootless/);
    expect(podman?.fix).toContain('podman.socket');
    // rootful Podman on this kernel: nothing in the way
    expect(checkEngine({ ...docker, components: ['Podman Engine'] }, linux)).toBeNull();
  });

  it('names an engine on another kernel (a remote DOCKER_HOST, a VM)', () => {
    const p = checkEngine({ ...docker, kernelVersion: '5.15.0-91-generic' }, { ...linux, dockerHost: 'tcp://10.1.2.3:2375' });
    expect(p?.detail).toContain('DOCKER_HOST=tcp://10.1.2.3:2375 runs on kernel 5.15.0-91-generic, this process on 6.1.0-18-amd64');
    expect(p?.fix).toContain('unset DOCKER_HOST');
  });
});

describe('preflight: privileges', () => {
  it('tells a user who is not root to use sudo or capabilities, and root without capabilities what dropped them', () => {
    expect(checkCapabilities(0n, 1000)?.fix).toMatch(
      /^run the tests as root \(sudo -E npx vitest run\), or grant the capabilities: sudo setcap cap_bpf,cap_net_admin,cap_sys_admin\+ep/,
    );
    const root = checkCapabilities(1n << 21n, 0);
    expect(root?.detail).toMatch(/^this process lacks CAP_BPF, CAP_NET_ADMIN \(root without every capability/);
    expect(root?.fix).toContain('--privileged');
  });
});

describe('preflight: the kernel', () => {
  it('says a kernel without BTF runs no eBPF kind, which kinds still run, and what to use', () => {
    expect(checkBtf(true, '6.1.0')).toBeNull();
    const p = checkBtf(false, '5.10.0-custom');
    expect(p?.detail).toMatch(/^\/sys\/kernel\/btf\/vmlinux is missing: kernel 5.10.0-custom was built without BTF/);
    expect(p?.detail).toContain('network-bandwidth, cpu-throttle');
    expect(p?.fix).toContain('CONFIG_DEBUG_INFO_BTF=y');
  });

  it('parses releases', () => {
    expect(parseKernelRelease('6.18.0-1-cloud-amd64')).toEqual([6, 18]);
    expect(parseKernelRelease('4.18.0-553.el8_10.x86_64')).toEqual([4, 18]);
    expect(parseKernelRelease('garbage')).toBeNull();
  });

  it('lists, per kernel, the kinds that cannot run and the ones that still can', () => {
    expect(kindsUnavailableOn('6.6.0')).toEqual({});
    expect(Object.keys(kindsUnavailableOn('6.1.0-18-amd64')).sort()).toEqual(['connection-limit', 'network-corrupt', 'network-duplicate']);
    expect(kindsUnavailableOn('6.1.0-18-amd64')['network-corrupt']).toBe(
      'kernel 6.1.0-18-amd64 predates TCX links on the host-side veth (Linux 6.6)',
    );
    const old = kindsUnavailableOn('5.4.0-150-generic');
    expect(Object.keys(old)).toContain('network-loss');
    expect(Object.keys(old)).toContain('crash-on-syscall');
    const p = checkKernel('5.4.0-150-generic');
    expect(p?.detail).toContain('Still available: network-bandwidth, cpu-throttle');
    expect(p?.detail).not.toMatch(/Still available:.*network-loss/);
    const p55 = checkKernel('5.5.0');
    expect(p55?.detail).toMatch(/Still available: crash-on-syscall, network-bandwidth/);
    expect(checkKernel('6.18.0')).toBeNull();
  });

  it('knows every registered kind: each is either on a kernel mechanism or needs no eBPF', async () => {
    const { KINDS_WITHOUT_EBPF } = await import('../../src/api/preflight.js');
    const known = new Set<string>([...KERNEL_MECHANISMS.flatMap((m) => m.kinds), ...KINDS_WITHOUT_EBPF]);
    expect([...faultKinds.keys()].filter((k) => !known.has(k))).toEqual([]);
  });
});
