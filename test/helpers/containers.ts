// Starting our fixture containers with Testcontainers, and talking to them.
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { inject } from 'vitest';

export const IMAGES = {
  httpServer: 'vitest-chaos/http-server:latest',
  client: 'vitest-chaos/client:latest',
} as const;

/** Every container our tests start carries it; the global teardown removes what is left. */
export const TEST_LABEL = 'vitest-chaos.test';
/** The pid of the Vitest run that started it (or of the bench): containers of dead runs are removed. */
export const RUN_LABEL = 'vitest-chaos.run';

/** Labels for a container started by this run. */
export function testLabels(name: string): Record<string, string> {
  let run = String(process.pid);
  try {
    run = inject('testRunId') ?? run;
  } catch {
    // outside a Vitest worker (bench, child scripts)
  }
  return { [TEST_LABEL]: name, [RUN_LABEL]: run };
}

export async function startHttpServer(name = 'server'): Promise<StartedTestContainer> {
  return new GenericContainer(IMAGES.httpServer)
    .withLabels(testLabels(name))
    .withWaitStrategy(Wait.forLogMessage(/listening http=/))
    .start();
}

export async function startClient(name = 'client'): Promise<StartedTestContainer> {
  return new GenericContainer(IMAGES.client).withLabels(testLabels(name)).start();
}

/** The container's address on its (first) network; reachable from the host. */
export function ipOf(c: StartedTestContainer): string {
  const nets = c.getNetworkNames();
  const ip = c.getIpAddress(nets[0] as string);
  if (!ip) throw new Error(`container ${c.getName()} has no IP address`);
  return ip;
}

export async function stopAll(...cs: (StartedTestContainer | undefined)[]): Promise<void> {
  await Promise.allSettled(cs.filter(Boolean).map((c) => c!.stop({ timeout: 0 })));
}

/** Runs a shell command in the container and returns its output and exit code. */
export async function sh(c: StartedTestContainer, script: string): Promise<{ output: string; exitCode: number }> {
  const r = await c.exec(['bash', '-c', script]);
  return { output: r.output, exitCode: r.exitCode };
}

/**
 * N sequential HTTP GETs from inside the container, each on a new connection;
 * returns the total time of each in ms (curl's own clock).
 */
export async function curlTimes(c: StartedTestContainer, url: string, n: number): Promise<number[]> {
  const { output, exitCode } = await sh(
    c,
    `for i in $(seq ${n}); do curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}\\n' '${url}'; done`,
  );
  if (exitCode !== 0) throw new Error(`curl loop failed (${exitCode}): ${output}`);
  return output
    .trim()
    .split('\n')
    .map((l) => {
      const [code, t] = l.trim().split(' ');
      if (code !== '200') throw new Error(`GET ${url} answered ${code}: ${output}`);
      return Number(t) * 1000;
    });
}
