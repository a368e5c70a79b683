// The native addon, loaded once per process (or worker thread) on first use.
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeLink {
  /** Detaches; returns false if it was already gone. */
  destroy(): boolean;
  readonly id: number | null;
  readonly alive: boolean;
}

export interface NativeObject {
  attachCgroup(program: string, cgroupPath: string): NativeLink;
  /** A TCX link on a device of this process's network namespace, after the programs already there. */
  attachTcx(program: string, ifindex: number, direction: 'ingress' | 'egress'): NativeLink;
  attach(program: string): NativeLink;
  mapUpdate(map: string, key: Buffer, value: Buffer, flags?: number): void;
  mapLookup(map: string, key: Buffer): Buffer | null;
  mapDelete(map: string, key: Buffer): boolean;
  mapKeys(map: string): Buffer[];
  programs(): { name: string; section: string }[];
  maps(): { name: string; keySize: number; valueSize: number; maxEntries: number }[];
  /** A struct's layout from the object's BTF; kind is the field's width and byte order (be* = network order). */
  structLayout(name: string): StructLayout;
  /** Every named enum of the object's BTF: { enumName: { CONSTANT: value } }. */
  enums(): Record<string, Record<string, number>>;
  /** Pins a program on a bpffs path (for iptables' bpf match); the caller unlinks it once the rule holds it. */
  pinProgram(program: string, path: string): void;
  close(): void;
}

export type FieldKind = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'u64' | 'i64' | 'be16' | 'be32' | 'be64' | 'bytes';

export interface StructLayout {
  name: string;
  size: number;
  fields: { name: string; offset: number; size: number; kind: FieldKind }[];
}

export interface NativeAddon {
  /** rodata: the object's initial .rodata, exactly its size; share: an object of the same file whose maps it uses. */
  BpfObject: new (
    path: string,
    options?: { rodata?: Buffer; share?: NativeObject },
  ) => NativeObject;
  libbpfVersion(): string;
  liveLinks(): number;
  /** SO_PEERCRED of a connected unix socket's file descriptor. */
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
}

/** The package root: two levels up from src/kernel or dist/kernel. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function bpfObjectPath(name: string, root = packageRoot): string {
  return join(root, 'bpf', `${name}.bpf.o`);
}

/** Debian/Ubuntu packages, then Fedora/RHEL ones, for a source build of the addon. */
export const SOURCE_BUILD_PACKAGES =
  'apt-get install -y g++ make python3 libbpf-dev libelf-dev zlib1g-dev (Fedora/RHEL: dnf install gcc-c++ make python3 libbpf-devel elfutils-libelf-devel zlib-devel)';

const require = createRequire(import.meta.url);

interface NodeGypBuild {
  (dir: string): unknown;
  resolve(dir: string): string;
}

/**
 * Where the addon is: a source build (build/Release) first, then the prebuild for this
 * platform (prebuilds/linux-x64/), as node-gyp-build resolves it. Throws what to do if neither.
 */
export function resolveAddon(root = packageRoot): string {
  try {
    return (require('node-gyp-build') as NodeGypBuild).resolve(root);
  } catch (err) {
    throw new Error(
      `vitest-chaos: no native addon for ${process.platform}-${process.arch} in ${root} ` +
        `(${(err as Error).message.split('\n')[0]}). The package ships one prebuilt for linux-x64 (glibc); elsewhere build it ` +
        `from source: ${SOURCE_BUILD_PACKAGES}, then \`VITEST_CHAOS_BUILD_FROM_SOURCE=1 npm rebuild vitest-chaos\` ` +
        '(in a checkout: `bash scripts/setup.sh`).',
    );
  }
}

let cached: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const path = resolveAddon();
  try {
    cached = require(path) as NativeAddon;
  } catch (err) {
    throw new Error(
      `vitest-chaos: the native addon ${path} does not load: ${(err as Error).message}. ` +
        `It needs libelf.so.1 (apt-get install -y libelf1; dnf install elfutils-libelf) and glibc >= 2.36 when prebuilt; ` +
        `or build it here: ${SOURCE_BUILD_PACKAGES}, then \`VITEST_CHAOS_BUILD_FROM_SOURCE=1 npm rebuild vitest-chaos\`.`,
    );
  }
  return cached;
}
