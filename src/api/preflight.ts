// What the machine must have before a fault can be injected, and how to get it.
import Docker from 'dockerode';
import { existsSync, readFileSync } from 'node:fs';
import { addonPath, bpfObjectPath } from '../kernel/addon.js';
import { findCgroup2Mount } from '../targets/cgroup-v2.js';

export interface PreflightProblem {
  requirement: string;
  detail: string;
  fix: string;
}

export interface PreflightResult {
  ok: boolean;
  problems: PreflightProblem[];
}

const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;
const CAP_BPF = 39n;

/** Effective capabilities of this process, from /proc/self/status. */
export function effectiveCaps(status = readFileSync('/proc/self/status', 'utf8')): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

export function checkCapabilities(caps: bigint): PreflightProblem | null {
  const missing = [
    ['CAP_BPF', CAP_BPF],
    ['CAP_NET_ADMIN', CAP_NET_ADMIN],
    ['CAP_SYS_ADMIN', CAP_SYS_ADMIN],
  ]
    .filter(([, bit]) => !(caps & (1n << (bit as bigint))))
    .map(([name]) => name as string);
  if (missing.length === 0) return null;
  return {
    requirement: 'privileges',
    detail: `this process lacks ${missing.join(', ')}`,
    fix: 'run the tests as root (sudo npx vitest) or grant the capabilities: sudo setcap cap_bpf,cap_net_admin,cap_sys_admin+ep $(which node)',
  };
}

/** Every object bpf/Makefile builds. */
const BPF_OBJECTS = ['packet-drop', 'connect', 'syscall-signal', 'veth', 'dns'];

/** Synchronous checks; the Docker check is separate because it needs the socket. */
export function preflightLocal(): PreflightProblem[] {
  const problems: PreflightProblem[] = [];
  const caps = checkCapabilities(effectiveCaps());
  if (caps) problems.push(caps);
  if (!findCgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'))) {
    problems.push({
      requirement: 'cgroup v2',
      detail: 'no cgroup2 filesystem in /proc/self/mountinfo',
      fix: 'mount it: mount -t cgroup2 none /sys/fs/cgroup/unified (hybrid hosts) or boot with systemd.unified_cgroup_hierarchy=1',
    });
  }
  if (!existsSync('/sys/kernel/btf/vmlinux')) {
    problems.push({
      requirement: 'BTF',
      detail: '/sys/kernel/btf/vmlinux is missing',
      fix: 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y (every current distribution kernel is)',
    });
  }
  if (!existsSync(addonPath) || BPF_OBJECTS.some((o) => !existsSync(bpfObjectPath(o)))) {
    problems.push({
      requirement: 'build',
      detail: 'the native addon or the eBPF objects are not built',
      fix: 'run `bash scripts/setup.sh` (or `npm run build` once clang, libbpf-dev and bpftool are installed)',
    });
  }
  return problems;
}

export async function preflightDocker(docker = new Docker()): Promise<PreflightProblem | null> {
  try {
    await docker.ping();
    return null;
  } catch (err) {
    return {
      requirement: 'Docker engine',
      detail: `no Docker engine answers (${(err as Error).message})`,
      fix: 'start one: `dockerd &` (or `bash scripts/setup.sh`, which installs and starts it), or set DOCKER_HOST',
    };
  }
}

export async function preflight(): Promise<PreflightResult> {
  const problems = preflightLocal();
  const docker = await preflightDocker();
  if (docker) problems.push(docker);
  return { ok: problems.length === 0, problems };
}

export function formatPreflight(r: PreflightResult): string {
  return r.problems.map((p) => `${p.requirement}: ${p.detail}. Fix: ${p.fix}`).join('\n');
}
