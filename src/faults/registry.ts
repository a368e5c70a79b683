// Every fault kind, by name. Adding a kind = one file + one line here.
import type { FaultKind } from './fault-kind.js';
import { networkLatency } from './network-latency.js';
import { networkLoss } from './network-loss.js';
import { networkPartition } from './network-partition.js';

export const faultKinds: ReadonlyMap<string, FaultKind<any>> = new Map(
  [networkLoss, networkPartition, networkLatency].map((k) => [k.kind, k as FaultKind<any>]),
);

export type { NetworkLossParams } from './network-loss.js';
export type { NetworkPartitionParams } from './network-partition.js';
export type { NetworkLatencyParams } from './network-latency.js';
