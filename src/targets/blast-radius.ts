// The blast radius, enforced: a fault may change only containers this run
// started with Testcontainers, or ones explicitly allowed. Naming a peer only
// reads its address, so peers need not be allowed.
import { ChaosSpecError } from '../contracts/errors.js';
import {
  containerIdOf,
  TargetError,
  type ContainerRef,
  type ResolvedTarget,
  type TargetResolver,
  type TargetState,
} from './resolve-target.js';

export class BlastRadius {
  private readonly allowed = new Set<string>();

  constructor(
    readonly resolver: TargetResolver,
    allowTargets: readonly string[] = [],
  ) {
    for (const t of allowTargets) this.allowed.add(t);
  }

  /** Lets a container that Testcontainers did not start be targeted. */
  allow(ref: ContainerRef): void {
    this.allowed.add(containerIdOf(ref));
  }

  /** Whether faults may change this container. */
  contains(t: ResolvedTarget): boolean {
    return (
      t.labels['org.testcontainers'] === 'true' ||
      this.allowed.has(t.id) ||
      this.allowed.has(t.name) ||
      [...this.allowed].some((a) => a.length >= 12 && t.id.startsWith(a))
    );
  }

  /**
   * Resolves `ref` (named `field` in errors from `where`); a container outside
   * the radius is refused unless `readOnly`. Throws ChaosSpecError.
   */
  async resolve(
    ref: ContainerRef,
    field: string,
    where: string,
    opts: { readOnly?: boolean; states?: readonly TargetState[] } = {},
  ): Promise<ResolvedTarget> {
    let t: ResolvedTarget;
    try {
      t = await this.resolver.resolve(ref, opts.states);
    } catch (err) {
      if (err instanceof TargetError) {
        throw new ChaosSpecError(where, [{ field, value: safeId(ref), expected: `a running container (${err.message})` }]);
      }
      throw err;
    }
    if (!opts.readOnly && !this.contains(t)) {
      throw new ChaosSpecError(where, [
        {
          field,
          value: t.name,
          expected:
            'a container this run started with Testcontainers, or one allowed with chaos.allow() / the plugin option allowTargets (the blast radius is enforced)',
        },
      ]);
    }
    return t;
  }
}

function safeId(ref: ContainerRef): string {
  try {
    return containerIdOf(ref);
  } catch {
    return String(ref);
  }
}
