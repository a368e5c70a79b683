// What the machine must have before a fault can be injected, and how to get it.
// Detection is pure functions over facts (capabilities, kernel release, the engine's
// /info and /version), so each case is unit-tested; gathering the facts is separate.
import Docker from 'dockerode';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { bpfObjectPath, loadAddon, packageRoot, resolveAddon } from '../kernel/addon.js';
import { hostControllers, type CgroupLayout, type Controller, type HostControllers } from '../targets/cgroup-controller.js';
import { cgroup2MountOn } from '../targets/cgroup-v2.js';

export interface PreflightProblem {
  requirement: string;
  detail: string;
  fix: string;
}

export interface PreflightResult {
  ok: boolean;
  problems: PreflightProblem[];
  /** Kinds this kernel cannot run (kind -> why), while the others still work. */
  kindsUnavailable?: Record<string, string>;
  /** Why those kinds cannot run, which still can, and what to do. */
  kernel?: PreflightProblem;
  /** The host's cgroups as found, and which resource kinds work on them (absent where not computed). */
  resources?: ResourceSupport;
}

export interface ResourceSupport {
  layout: CgroupLayout;
  /** One line per resource kind: what it acts through here, or why it cannot. */
  kinds: { kind: string; works: boolean; how: string }[];
}

/** What each resource kind needs of the target's cgroups, on v1 and on v2. */
const RESOURCE_KINDS: { kind: string; controller?: Controller; v1: string; v2: string }[] = [
  { kind: 'cpu-throttle', controller: 'cpu', v1: 'cpu.cfs_quota_us', v2: 'cpu.max' },
  { kind: 'cpu-stress', v1: "workers placed in the target's cgroups", v2: "workers placed in the target's cgroup" },
  {
    kind: 'memory-stress',
    controller: 'memory',
    v1: "a hog in the target's cgroups, memory.usage_in_bytes",
    v2: "a hog in the target's cgroup, memory.current",
  },
  {
    kind: 'memory-limit',
    controller: 'memory',
    v1: 'memory.limit_in_bytes, OOM kills from memory.oom_control',
    v2: 'memory.max, OOM kills from memory.events',
  },
  {
    kind: 'io-throttle',
    controller: 'io',
    v1: 'blkio.throttle.* (reads and direct writes; buffered writes are not capped)',
    v2: 'io.max (reads, direct and buffered writes)',
  },
  { kind: 'disk-fill', v1: 'a file in the target', v2: 'a file in the target' },
];

/** Which resource kinds work with the host's cgroups as found, and why not where one does not. */
export function resourceSupport(host: HostControllers = hostControllers()): ResourceSupport {
  const v = host.layout === 'v2' ? 2 : 1;
  const kinds = RESOURCE_KINDS.map(({ kind, controller, v1, v2 }) => {
    if (!controller) return { kind, works: host.layout !== 'none', how: v === 2 ? v2 : v1 };
    const c = host.controllers[controller];
    if ('missing' in c) return { kind, works: false, how: c.missing };
    const how = c.version === 2 ? v2 : v1;
    return { kind, works: true, how: `cgroup v${c.version} ${how}` };
  });
  return { layout: host.layout, kinds };
}

export function formatResourceSupport(r: ResourceSupport): string {
  const works = r.kinds.filter((k) => k.works);
  const not = r.kinds.filter((k) => !k.works);
  const name = { v1: 'cgroup v1', hybrid: 'hybrid cgroups (v1 controllers, a v2 tree)', v2: 'pure cgroup v2', none: 'no cgroups mounted' }[
    r.layout
  ];
  return (
    `${name}: ${works.map((k) => k.kind).join(', ') || 'no resource kind'} work` + not.map((k) => `; ${k.kind} cannot: ${k.how}`).join('')
  );
}

const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;
const CAP_BPF = 39n;

/** Effective capabilities of this process, from /proc/self/status. */
export function effectiveCaps(status = readFileSync('/proc/self/status', 'utf8')): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

export function checkCapabilities(caps: bigint, uid = process.getuid?.() ?? 0): PreflightProblem | null {
  const missing = [
    ['CAP_BPF', CAP_BPF],
    ['CAP_NET_ADMIN', CAP_NET_ADMIN],
    ['CAP_SYS_ADMIN', CAP_SYS_ADMIN],
  ]
    .filter(([, bit]) => !(caps & (1n << (bit as bigint))))
    .map(([name]) => name as string);
  if (missing.length === 0) return null;
  const who = uid === 0 ? 'root without every capability (a container or setpriv dropped them)' : `user ${uid}, not root`;
  return {
    requirement: 'privileges',
    detail: `this process lacks ${missing.join(', ')} (${who}): eBPF programs, cgroups and qdiscs need them`,
    fix:
      uid === 0
        ? 'run the tests as root with full capabilities (in a container: docker run --privileged --pid=host --cgroupns=host)'
        : 'run the tests as root (sudo -E npx vitest run), or grant the capabilities: sudo setcap cap_bpf,cap_net_admin,cap_sys_admin+ep $(readlink -f $(which node))',
  };
}

/** "6.1.0-18-amd64" -> [6, 1]; null when unreadable. */
export function parseKernelRelease(rel: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** The eBPF mechanisms, the oldest mainline kernel that has them, and the kinds built on them. */
export const KERNEL_MECHANISMS: readonly { mechanism: string; since: [number, number]; kinds: readonly string[] }[] = [
  { mechanism: 'cgroup_skb programs held by bpf_links', since: [5, 7], kinds: ['network-loss', 'network-partition'] },
  {
    mechanism: 'cgroup/connect4 and sockops programs held by bpf_links',
    since: [5, 7],
    kinds: ['network-latency', 'network-partition', 'network-reset', 'network-timeout', 'network-slow-close', 'http'],
  },
  { mechanism: 'cgroup/sendmsg4 and recvmsg4 programs held by bpf_links', since: [5, 7], kinds: ['dns'] },
  { mechanism: 'tp_btf programs with bpf_send_signal', since: [5, 5], kinds: ['crash-on-syscall'] },
  { mechanism: 'TCX links on the host-side veth', since: [6, 6], kinds: ['network-corrupt', 'network-duplicate', 'connection-limit'] },
];

/** Kinds that need no eBPF: cgroup v1/v2 files, HTB qdiscs, Docker, signals and processes. */
export const KINDS_WITHOUT_EBPF = [
  'network-bandwidth',
  'cpu-throttle',
  'cpu-stress',
  'memory-stress',
  'memory-limit',
  'io-throttle',
  'disk-fill',
  'process-kill',
  'container-pause',
  'container-restart',
  'container-stop',
] as const;

/**
 * Kinds this kernel cannot run, from its release (mainline versions: a distribution
 * kernel with backports may have more; then the fault's own load or attach error says so).
 */
export function kindsUnavailableOn(kernelRelease: string): Record<string, string> {
  const v = parseKernelRelease(kernelRelease);
  const out: Record<string, string> = {};
  if (!v) return out;
  for (const m of KERNEL_MECHANISMS) {
    if (v[0] > m.since[0] || (v[0] === m.since[0] && v[1] >= m.since[1])) continue;
    for (const kind of m.kinds) out[kind] ??= `kernel ${kernelRelease} predates ${m.mechanism} (Linux ${m.since.join('.')})`;
  }
  return out;
}

export function checkKernel(kernelRelease: string): PreflightProblem | null {
  const unavailable = kindsUnavailableOn(kernelRelease);
  const kinds = Object.keys(unavailable);
  if (kinds.length === 0) return null;
  const reasons = [...new Set(Object.values(unavailable))];
  const working = KERNEL_MECHANISMS.flatMap((m) => m.kinds).filter((k) => !unavailable[k]);
  return {
    requirement: 'kernel',
    detail:
      `${reasons.join('; ')}: ${kinds.join(', ')} cannot run here. Still available: ` +
      `${[...new Set([...working, ...KINDS_WITHOUT_EBPF])].join(', ')}`,
    fix: 'use a machine with a newer kernel (Linux 6.6 or later runs every kind), e.g. Debian 13, Ubuntu 24.04, a current cloud image',
  };
}

/** What the engine says of itself: the parts of GET /info and GET /version preflight reads. */
export interface EngineFacts {
  /** /info OperatingSystem, e.g. "Docker Desktop", "Debian GNU/Linux 12 (bookworm)". */
  operatingSystem?: string;
  /** /info KernelVersion: the kernel that runs the containers. */
  kernelVersion?: string;
  /** /info SecurityOptions, e.g. ["name=seccomp,profile=builtin", "name=rootless"]. */
  securityOptions?: string[];
  /** /version Components[].Name, e.g. ["Engine"] or ["Podman Engine"]. */
  components?: string[];
}

export interface HostFacts {
  platform: NodeJS.Platform;
  /** os.release() of the kernel this process runs on. */
  kernelRelease: string;
  dockerHost?: string;
}

/** Why the containers are out of our reach (another kernel, rootless), or null. */
export function checkEngine(engine: EngineFacts, host: HostFacts): PreflightProblem | null {
  const podman = (engine.components ?? []).some((c) => /podman/i.test(c));
  const name = podman ? 'Podman' : 'Docker';
  const rootless = (engine.securityOptions ?? []).some((o) => /(^|,)name=rootless(,|$)/.test(o));
  const desktop = /docker desktop/i.test(engine.operatingSystem ?? '') || /linuxkit/i.test(engine.kernelVersion ?? '');
  if (host.platform !== 'linux' || desktop) {
    return {
      requirement: 'Docker engine on this kernel',
      detail:
        `${desktop ? 'Docker Desktop' : name} runs its engine in a VM${host.platform !== 'linux' ? ` (this is ${host.platform})` : ''}: ` +
        "the containers' cgroups and veths are in the VM's kernel, where this process cannot load eBPF programs",
      fix:
        'run the tests on Linux with Docker Engine on the same machine (a Linux CI runner or VM), or inside the VM: ' +
        'docker run --privileged --pid=host --cgroupns=host -v /var/run/docker.sock:/var/run/docker.sock -v "$PWD":/w -w /w node:20 npx vitest run',
    };
  }
  if (rootless) {
    return {
      requirement: 'rootful container engine',
      detail:
        `the ${name} engine is rootless: its containers' network is in the engine's own user and network namespace ` +
        '(slirp4netns/pasta), with no host-side veth or bridge gateway here, and their cgroups belong to that user',
      fix: podman
        ? 'use rootful Podman (sudo systemctl start podman.socket; DOCKER_HOST=unix:///run/podman/podman.sock) or Docker Engine, and run the tests as root'
        : 'use the rootful engine (sudo systemctl start docker; unset DOCKER_HOST or set DOCKER_HOST=unix:///var/run/docker.sock) and run the tests as root',
    };
  }
  const hostKernel = host.kernelRelease;
  if (engine.kernelVersion && hostKernel && engine.kernelVersion !== hostKernel) {
    return {
      requirement: 'Docker engine on this kernel',
      detail:
        `the engine${host.dockerHost ? ` at DOCKER_HOST=${host.dockerHost}` : ''} runs on kernel ${engine.kernelVersion}, ` +
        `this process on ${hostKernel}: it is another machine or a VM, whose containers this process cannot reach`,
      fix: "use the local engine (unset DOCKER_HOST; start it with dockerd or systemctl start docker), or run the tests on the engine's machine",
    };
  }
  return null;
}

export function checkBtf(hasVmlinuxBtf: boolean, kernelRelease: string): PreflightProblem | null {
  if (hasVmlinuxBtf) return null;
  return {
    requirement: 'BTF',
    detail: `/sys/kernel/btf/vmlinux is missing: kernel ${kernelRelease} was built without BTF, which the CO-RE eBPF objects need to load (no eBPF kind can run; ${KINDS_WITHOUT_EBPF.join(', ')} need none)`,
    fix: 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y (every current distribution kernel is: Debian 11+, Ubuntu 20.10+, RHEL 8.2+)',
  };
}

/** Every object the package ships (bpf/Makefile builds them in a checkout). */
const BPF_OBJECTS = ['packet-drop', 'connect', 'syscall-signal', 'veth', 'dns', 'conn-limit', 'observe'];

const EM_BPF = 247;
const ET_DYN = 3;

/** What an ELF file's header says, or why it is not one (the first 20 bytes are enough). */
export function elfProblem(path: string, want: { machine?: number; type?: number }): string | null {
  let head = Buffer.alloc(0);
  let size = 0;
  try {
    size = statSync(path).size;
    const fd = openSync(path, 'r');
    try {
      head = Buffer.alloc(20);
      head = head.subarray(0, readSync(fd, head, 0, 20, 0));
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    return `cannot be read (${(err as Error).message})`;
  }
  if (head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46) return `is not an ELF file (${size} bytes; corrupt or truncated)`;
  const type = head.readUInt16LE(16);
  const machine = head.readUInt16LE(18);
  if (want.machine !== undefined && machine !== want.machine) return `is an ELF file for machine ${machine}, not eBPF (${want.machine})`;
  if (want.type !== undefined && type !== want.type) return `is an ELF file of type ${type}, not a shared object`;
  return null;
}

/**
 * The addon and every BPF object: missing, corrupt (not the ELF file it must be)
 * or, for the addon of this package, failing to load. `root` is the package.
 */
export function checkArtifacts(root = packageRoot): PreflightProblem[] {
  const problems: PreflightProblem[] = [];
  const rebuild =
    'in a checkout: `bash scripts/setup.sh` (or `npm run build` once clang, llvm, libbpf-dev and bpftool are installed); installed: `npm rebuild vitest-chaos`';
  try {
    const addon = resolveAddon(root);
    const bad = elfProblem(addon, { type: ET_DYN });
    if (bad) problems.push({ requirement: 'native addon', detail: `the native addon ${addon} ${bad}`, fix: rebuild });
    else if (root === packageRoot) loadAddon();
  } catch (err) {
    problems.push({ requirement: 'native addon', detail: (err as Error).message, fix: 'see above' });
  }
  const missing = BPF_OBJECTS.filter((o) => !existsSync(bpfObjectPath(o, root)));
  if (missing.length) {
    problems.push({
      requirement: 'eBPF objects',
      detail: `${missing.map((o) => `bpf/${o}.bpf.o`).join(', ')} missing (the package ships them; a checkout builds them)`,
      fix: 'in a checkout: `bash scripts/setup.sh` (or `npm run build` once clang, llvm, libbpf-dev and bpftool are installed)',
    });
  }
  const corrupt = BPF_OBJECTS.filter((o) => !missing.includes(o))
    .map((o) => [o, elfProblem(bpfObjectPath(o, root), { machine: EM_BPF })] as const)
    .filter(([, bad]) => bad);
  if (corrupt.length) {
    problems.push({
      requirement: 'eBPF objects',
      detail: corrupt.map(([o, bad]) => `bpf/${o}.bpf.o ${bad}`).join('; '),
      fix: rebuild,
    });
  }
  return problems;
}

/** Synchronous checks; the engine's are separate because they need the socket. */
export function preflightLocal(): PreflightProblem[] {
  const problems: PreflightProblem[] = [];
  if (process.platform !== 'linux') {
    problems.push({
      requirement: 'Linux',
      detail: `this is ${process.platform}: eBPF programs load into the kernel that runs the containers, and only Linux has them`,
      fix: 'run the tests in a Linux VM or CI runner with Docker Engine, as root',
    });
    return problems;
  }
  const caps = checkCapabilities(effectiveCaps());
  if (caps) problems.push(caps);
  if (!cgroup2MountOn(readFileSync('/proc/self/mountinfo', 'utf8'))) {
    problems.push({
      requirement: 'cgroup v2',
      detail: 'no cgroup2 filesystem in /proc/self/mountinfo',
      fix: 'mount it: mount -t cgroup2 none /sys/fs/cgroup/unified (hybrid hosts) or boot with systemd.unified_cgroup_hierarchy=1',
    });
  }
  const btf = checkBtf(existsSync('/sys/kernel/btf/vmlinux'), release());
  if (btf) problems.push(btf);
  const kernel = checkKernel(release());
  if (kernel) problems.push(kernel);
  problems.push(...checkArtifacts());
  return problems;
}

export async function engineFacts(docker: Docker): Promise<EngineFacts> {
  const [info, version] = await Promise.all([
    docker.info() as Promise<{ OperatingSystem?: string; KernelVersion?: string; SecurityOptions?: string[] }>,
    docker.version().catch(() => ({}) as { Components?: { Name: string }[] }),
  ]);
  return {
    operatingSystem: info.OperatingSystem,
    kernelVersion: info.KernelVersion,
    securityOptions: info.SecurityOptions,
    components: ((version as { Components?: { Name: string }[] }).Components ?? []).map((c) => c.Name),
  };
}

export async function preflightDocker(docker = new Docker()): Promise<PreflightProblem | null> {
  let facts: EngineFacts;
  try {
    await docker.ping();
    facts = await engineFacts(docker);
  } catch (err) {
    return {
      requirement: 'Docker engine',
      detail: `no Docker engine answers (${(err as Error).message})`,
      fix: 'start one: `dockerd &` or `systemctl start docker` (in a checkout: `bash scripts/setup.sh`, which installs and starts it), or set DOCKER_HOST',
    };
  }
  return checkEngine(facts, { platform: process.platform, kernelRelease: release(), dockerHost: process.env.DOCKER_HOST });
}

export async function preflight(): Promise<PreflightResult> {
  const all = preflightLocal();
  const docker = await preflightDocker();
  if (docker) all.push(docker);
  // An old kernel blocks only the kinds it lacks; everything else is a blocker.
  const problems = all.filter((p) => p.requirement !== 'kernel');
  const kindsUnavailable = process.platform === 'linux' ? kindsUnavailableOn(release()) : {};
  return {
    ok: problems.length === 0,
    problems,
    kindsUnavailable,
    kernel: all.find((p) => p.requirement === 'kernel'),
    resources: process.platform === 'linux' ? resourceSupport() : undefined,
  };
}

export function formatPreflight(r: PreflightResult): string {
  return r.problems.map((p) => `${p.requirement}: ${p.detail}. Fix: ${p.fix}`).join('\n');
}
