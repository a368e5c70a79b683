// Every fault kind, by name. Adding a kind = one file + one line here.
import type { FaultKind } from './fault-kind.js';
import { containerPause } from './container-pause.js';
import { containerRestart } from './container-restart.js';
import { containerStop } from './container-stop.js';
import { crashOnSyscall } from './crash-on-syscall.js';
import { processKill } from './process-kill.js';
import { networkLatency } from './network-latency.js';
import { networkLoss } from './network-loss.js';
import { networkPartition } from './network-partition.js';
import { networkCorrupt } from './network-corrupt.js';
import { networkDuplicate } from './network-duplicate.js';
import { networkBandwidth } from './network-bandwidth.js';
import { networkReset } from './network-reset.js';
import { networkTimeout } from './network-timeout.js';
import { networkSlowClose } from './network-slow-close.js';
import { http } from './http.js';
import { dns } from './dns.js';
import { cpuThrottle } from './cpu-throttle.js';
import { cpuStress } from './cpu-stress.js';
import { memoryStress } from './memory-stress.js';
import { memoryLimit } from './memory-limit.js';
import { ioThrottle } from './io-throttle.js';
import { diskFill } from './disk-fill.js';

export const faultKinds: ReadonlyMap<string, FaultKind<any>> = new Map(
  [networkLoss, networkPartition, networkLatency, processKill, containerPause, containerStop, containerRestart, crashOnSyscall, networkReset, networkTimeout, networkSlowClose, http, dns, cpuThrottle, cpuStress, memoryStress, memoryLimit, ioThrottle, diskFill, networkCorrupt, networkDuplicate, networkBandwidth].map((k) => [k.kind, k as FaultKind<any>]),
);

export type { NetworkLossParams } from './network-loss.js';
export type { NetworkPartitionParams } from './network-partition.js';
export type { NetworkLatencyParams } from './network-latency.js';
export type { NetworkCorruptParams } from './network-corrupt.js';
export type { NetworkDuplicateParams } from './network-duplicate.js';
export type { NetworkBandwidthParams } from './network-bandwidth.js';
export type { NetworkResetParams } from './network-reset.js';
export type { NetworkTimeoutParams } from './network-timeout.js';
export type { NetworkSlowCloseParams } from './network-slow-close.js';
export type { HttpParams } from './http.js';
export type { DnsParams } from './dns.js';
export type { ProcessKillParams } from './process-kill.js';
export type { ContainerPauseParams } from './container-pause.js';
export type { ContainerStopParams } from './container-stop.js';
export type { ContainerRestartParams } from './container-restart.js';
export type { CrashOnSyscallParams } from './crash-on-syscall.js';
export type { CpuThrottleParams } from './cpu-throttle.js';
export type { CpuStressParams } from './cpu-stress.js';
export type { MemoryStressParams } from './memory-stress.js';
export type { MemoryLimitParams } from './memory-limit.js';
export type { IoThrottleParams } from './io-throttle.js';
export type { DiskFillParams } from './disk-fill.js';
