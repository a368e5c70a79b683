// Every fault kind, in one list. FaultSpec, the registry and the per-kind
// parameter and stats types all derive from it: adding a kind is one new file
// and one line here (docs/adding-a-fault-kind.md).
import type { z } from 'zod';
import type { AnyFaultKind, FaultKind } from './fault-kind.js';
import type { CommonFields } from './params.js';
import { connectionLimit } from './connection/connection-limit.js';
import { dns } from './connection/dns.js';
import { http } from './connection/http.js';
import { networkLatency } from './connection/network-latency.js';
import { networkReset } from './connection/network-reset.js';
import { networkSlowClose } from './connection/network-slow-close.js';
import { networkTimeout } from './connection/network-timeout.js';
import { networkBandwidth } from './network/network-bandwidth.js';
import { networkCorrupt } from './network/network-corrupt.js';
import { networkDuplicate } from './network/network-duplicate.js';
import { networkLoss } from './network/network-loss.js';
import { networkPartition } from './network/network-partition.js';
import { containerPause } from './processes/container-pause.js';
import { containerRestart } from './processes/container-restart.js';
import { containerStop } from './processes/container-stop.js';
import { crashOnSyscall } from './processes/crash-on-syscall.js';
import { processKill } from './processes/process-kill.js';
import { cpuStress } from './resources/cpu-stress.js';
import { cpuThrottle } from './resources/cpu-throttle.js';
import { diskFill } from './resources/disk-fill.js';
import { ioThrottle } from './resources/io-throttle.js';
import { memoryLimit } from './resources/memory-limit.js';
import { memoryStress } from './resources/memory-stress.js';

export const FAULT_KINDS = [
  networkLoss,
  networkPartition,
  networkCorrupt,
  networkDuplicate,
  networkBandwidth,
  networkLatency,
  networkReset,
  networkTimeout,
  networkSlowClose,
  http,
  dns,
  connectionLimit,
  cpuThrottle,
  cpuStress,
  memoryStress,
  memoryLimit,
  ioThrottle,
  diskFill,
  processKill,
  containerPause,
  containerStop,
  containerRestart,
  crashOnSyscall,
] as const;

type Kinds = (typeof FAULT_KINDS)[number];

/** The name of every fault kind: 'network-loss', 'cpu-throttle', ... */
export type FaultKindName = Kinds['kind'];

type KindNamed<N extends FaultKindName> = Extract<Kinds, { kind: N }>;

/** The parameters of a kind as a user writes them (defaults optional). */
export type ParamsOf<N extends FaultKindName> = NoIndex<z.input<KindNamed<N>['schema']>>;

// A kind without parameters has the input type Record<string, never>: its spec is just kind + target.
// biome-ignore lint/complexity/noBannedTypes: {} is "no fields of its own" here
type NoIndex<T> = string extends keyof T ? {} : T;

/** What `fault.stats()` returns for a kind. */
export type StatsOf<N extends FaultKindName> = KindNamed<N> extends FaultKind<string, z.ZodType, infer St> ? St : never;

/** A fault as chaos.inject() takes it: `kind`, `target`, `seed?` and the kind's own parameters. */
export type FaultSpec = { [N in FaultKindName]: { kind: N } & ParamsOf<N> & CommonFields }[FaultKindName];

/** The kinds by name. */
export const faultKinds: ReadonlyMap<string, AnyFaultKind> = new Map(FAULT_KINDS.map((k) => [k.kind, k as AnyFaultKind]));

export type { ConnectionLimitParams, ConnectionLimitStats } from './connection/connection-limit.js';
export type { DnsParams, DnsStats } from './connection/dns.js';
export type { HttpParams, HttpStats } from './connection/http.js';
export type { NetworkLatencyParams, NetworkLatencyStats } from './connection/network-latency.js';
export type { NetworkResetParams, NetworkResetStats } from './connection/network-reset.js';
export type { NetworkSlowCloseParams, NetworkSlowCloseStats } from './connection/network-slow-close.js';
export type { NetworkTimeoutParams, NetworkTimeoutStats } from './connection/network-timeout.js';
export type { NetworkBandwidthParams, NetworkBandwidthStats } from './network/network-bandwidth.js';
export type { NetworkCorruptParams, NetworkCorruptStats } from './network/network-corrupt.js';
export type { NetworkDuplicateParams, NetworkDuplicateStats } from './network/network-duplicate.js';
export type { NetworkLossParams, NetworkLossStats } from './network/network-loss.js';
export type { NetworkPartitionParams, NetworkPartitionStats } from './network/network-partition.js';
export type { ContainerPauseParams, ContainerPauseStats } from './processes/container-pause.js';
export type { ContainerRestartParams, ContainerRestartStats } from './processes/container-restart.js';
export type { ContainerStopParams, ContainerStopStats } from './processes/container-stop.js';
export type { CrashOnSyscallParams, CrashOnSyscallStats } from './processes/crash-on-syscall.js';
export type { ProcessKillParams, ProcessKillStats } from './processes/process-kill.js';
export type { CpuStressParams, CpuStressStats } from './resources/cpu-stress.js';
export type { CpuThrottleParams, CpuThrottleStats } from './resources/cpu-throttle.js';
export type { DiskFillParams, DiskFillStats } from './resources/disk-fill.js';
export type { IoThrottleParams, IoThrottleStats } from './resources/io-throttle.js';
export type { MemoryLimitParams, MemoryLimitStats } from './resources/memory-limit.js';
export type { MemoryStressParams, MemoryStressStats } from './resources/memory-stress.js';
