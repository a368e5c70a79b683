// What every fault kind provides: its name, the schema of its own parameters
// (JSDoc on every field: unit in the name, default, range), apply() returning
// how to revert and what it counts, and the interface of those counters.
// Shared attributes (target, seed) live in the handle (fault-handle.ts) and in
// params.ts; a kind holds only its own parameters and behaviour.
import type Docker from 'dockerode';
import type { z } from 'zod';
import type { AppliedFault, FaultStats } from '../contracts/applied-fault.js';
import type { Journal } from '../journal/journal.js';
import type { Kernel, ProgramSet } from '../kernel/kernel.js';
import type { ContainerRef, ResolvedTarget, TargetResolver, TargetState } from '../targets/resolve-target.js';

export interface FaultContext {
  kernel: Kernel;
  resolver: TargetResolver;
  /** Resolves a peer container and checks it may be named (read-only: peers are never changed). */
  resolvePeer(ref: ContainerRef): Promise<ResolvedTarget>;
  /** This fault's seed: every random choice it makes derives from it. */
  seed: number;
  /** The Docker engine the target runs on. */
  docker: Docker;
  /**
   * Write-ahead journal: a change that does not undo itself when our process
   * dies must be recorded here BEFORE it is made (see src/journal/journal.ts).
   */
  journal(): Journal;
}

export interface FaultKind<K extends string = string, S extends z.ZodType = z.ZodType, St extends object = FaultStats> {
  readonly kind: K;
  /**
   * Strict schema of the kind's own parameters (without kind, target, seed).
   * Every check that needs only the parameters belongs here (refinements), so
   * chaos.validate() and an experiment's validation catch it before anything runs.
   */
  readonly schema: S;
  /**
   * The container states apply() can work with (default: running only); e.g.
   * pausing a paused container. A stopped target comes with pid 0 and no cgroup.
   */
  readonly targetStates?: readonly TargetState[];
  /**
   * The eBPF objects apply() uses. Loading one takes the event loop for up to a few
   * hundred ms, so an experiment loads them before its baseline: the observe phase
   * then measures the fault, not our loading.
   */
  readonly programs?: readonly ProgramSet[];
  /**
   * How many things the fault reached, from its stats: packets, connections,
   * lookups, processes, calls (the target itself for a fault on its whole cgroup
   * or container). 0 means it did nothing: an experiment in which a fault matched
   * nothing is 'inconclusive', and a plain chaos.inject() warns when reverted.
   * Every kind must say what counts, so a new kind cannot be silent by omission.
   */
  matched(stats: St): number;
  /** What matched() counts, in words for the verdict's reason: "packets to or from the target that fit direction, peer, port and protocol". */
  readonly matchedWhat: string;
  /** Applies the fault; checks that need the resolved target throw ChaosSpecError. */
  apply(params: z.output<S>, target: ResolvedTarget, ctx: FaultContext): Promise<AppliedFault<St>>;
}

/** Any kind, as the registry holds them. */
// biome-ignore lint/suspicious/noExplicitAny: the registry erases each kind's own types
export type AnyFaultKind = FaultKind<string, z.ZodType, any>;

export type { AppliedFault, FaultStats } from '../contracts/applied-fault.js';
