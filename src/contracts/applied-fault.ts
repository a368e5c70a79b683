// What applying a fault leaves behind: how to undo it and what it counted. The
// lowest layer owns it because the machinery below src/faults (kernel rules,
// cgroup writers, the data path) returns it.

/** Counters of one fault, by name (each kind documents its own in a Stats interface). */
export type FaultStats = Record<string, number>;

export interface AppliedFault<S extends object = FaultStats> {
  /** Undo the fault. Called at most once by the handle; must tolerate a vanished target. */
  revert(): Promise<void> | void;
  /** What the kernel or the data path counted so far. */
  stats(): S;
}

/** The same applied fault with its counters renamed or reshaped. */
export function mapStats<A extends object, B extends object>(applied: AppliedFault<A>, map: (a: A) => B): AppliedFault<B> {
  return { revert: () => applied.revert(), stats: () => map(applied.stats()) };
}
