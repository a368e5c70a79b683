// What every fault kind provides. Shared attributes (target, seed) live in the
// wrapper (src/api/active-fault.ts); a kind holds only its own parameters.
import type Docker from 'dockerode';
import type { z } from 'zod';
import type { Journal } from '../journal/journal.js';
import type { Kernel } from '../kernel/kernel.js';
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

export type FaultStats = Record<string, number>;

export interface AppliedFault {
  /** Undo the fault. Called at most once by the wrapper; must tolerate a vanished target. */
  revert(): Promise<void> | void;
  /** What the kernel or the data path counted so far. */
  stats(): FaultStats;
}

export interface FaultKind<P = unknown> {
  readonly kind: string;
  /** Strict schema of the kind's own parameters (without kind, target, seed). */
  readonly schema: z.ZodType<P>;
  /**
   * The container states apply() can work with (default: running only); e.g.
   * pausing a paused container. A stopped target comes with pid 0 and no cgroup.
   */
  readonly targetStates?: readonly TargetState[];
  /** Checks that need the resolved target (e.g. it has a network); throw ChaosSpecError. */
  apply(params: P, target: ResolvedTarget, ctx: FaultContext): Promise<AppliedFault>;
}
