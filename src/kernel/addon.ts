// The native addon, loaded once per process (or worker thread) on first use.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
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
  close(): void;
}

export type FieldKind = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'u64' | 'i64' | 'be16' | 'be32' | 'be64' | 'bytes';

export interface StructLayout {
  name: string;
  size: number;
  fields: { name: string; offset: number; size: number; kind: FieldKind }[];
}

export interface NativeAddon {
  BpfObject: new (path: string) => NativeObject;
  libbpfVersion(): string;
  liveLinks(): number;
}

/** The package root: two levels up from src/kernel or dist/kernel. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const addonPath = join(packageRoot, 'build', 'Release', 'vitest_chaos.node');

export function bpfObjectPath(name: string): string {
  return join(packageRoot, 'bpf', `${name}.bpf.o`);
}

let cached: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  if (!existsSync(addonPath)) {
    throw new Error(
      `vitest-chaos: the native addon is not built (${addonPath} is missing). ` +
        'Run `bash scripts/setup.sh` (or `npm run build:native` once libbpf-dev is installed).',
    );
  }
  const require = createRequire(import.meta.url);
  cached = require(addonPath) as NativeAddon;
  return cached;
}
