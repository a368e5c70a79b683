// A child process (test/helpers/inject-child.ts) that injects faults and then
// waits to be killed, for the tests that SIGKILL the injecting process; and the
// target/control pair those tests share. Every injector started here is killed
// after its file (afterAll of sigkillTargets, or killInjectors), so a test that
// fails or times out leaves no process holding a fault.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, expect } from 'vitest';
import { startHttpServer, stopAll } from './containers.js';
import { docker } from './processes.js';

const started = new Set<ChildProcess>();

/**
 * Starts an injector holding one fault (`params` without kind and target), or, with kind
 * 'sequence', every fault of `params` (a list of { kind, ...params }) one after the other,
 * in one process. Resolves once they are all in force.
 */
export async function startInjector(
  kind: string,
  target: StartedTestContainer,
  params: Record<string, unknown> | Record<string, unknown>[],
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/inject-child.ts', kind, target.getId(), JSON.stringify(params)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  started.add(child);
  child.once('exit', () => started.delete(child));
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (l) => l.startsWith('READY') && resolve());
    child.once('exit', (code) => reject(new Error(`injector of ${kind} exited with ${code} before it was ready`)));
  });
  return child;
}

export async function sigkill(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  const [, signal] = await exited;
  expect(signal).toBe('SIGKILL');
}

/** Kills every injector still running (a test that failed or timed out before its own SIGKILL). */
export function killInjectors(): void {
  for (const c of started) c.kill('SIGKILL');
}

/**
 * A target and a control (fixture HTTP servers) started before the file's tests; afterwards
 * every injector left is killed, the target unpaused (a test may leave it paused), both removed.
 */
export function sigkillTargets(name: string): { readonly target: StartedTestContainer; readonly control: StartedTestContainer } {
  let target: StartedTestContainer;
  let control: StartedTestContainer;
  beforeAll(async () => {
    [target, control] = await Promise.all([startHttpServer(`${name}-target`), startHttpServer(`${name}-control`)]);
  });
  afterAll(async () => {
    killInjectors();
    if (target) {
      await docker
        .getContainer(target.getId())
        .unpause()
        .catch(() => undefined);
    }
    await stopAll(target, control);
  });
  return {
    get target() {
      return target;
    },
    get control() {
      return control;
    },
  };
}
