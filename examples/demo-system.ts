// The demo system of the game day: an API container that serves each request
// by calling a backend container over a Testcontainers network. The API's
// /proxy route reports what its outbound call cost, so faults on the API's
// outbound connections show up in what a user of the API sees.
import { GenericContainer, Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';

export interface DemoSystem {
  network: StartedNetwork;
  api: StartedTestContainer;
  /** The first backend replica (the only one by default). */
  backend: StartedTestContainer;
  /** Every backend replica: containers sharing the network alias "backend", which Docker's DNS spreads the api's calls over. */
  backends: StartedTestContainer[];
  /** URL a user calls: the API, which calls the backend (a new connection each time). */
  url: string;
  stop(): Promise<void>;
}

const IMAGE = 'vitest-chaos/http-server:latest';

export async function startDemoSystem(backendDelayMs = 5, opts: { backendReplicas?: number } = {}): Promise<DemoSystem> {
  const network = await new Network().start();
  const start = (alias: string) =>
    new GenericContainer(IMAGE)
      .withNetwork(network)
      .withNetworkAliases(alias)
      .withLabels({ 'vitest-chaos.test': `demo-${alias}`, 'vitest-chaos.run': String(process.pid) })
      .withWaitStrategy(Wait.forLogMessage(/listening http=/))
      .start();
  const [api, ...backends] = await Promise.all([
    start('api'),
    ...Array.from({ length: opts.backendReplicas ?? 1 }, () => start('backend')),
  ]);
  const backend = backends[0] as StartedTestContainer;
  const apiIp = api.getIpAddress(network.getName());
  const backendUrl = encodeURIComponent(`http://backend:8080/delay?ms=${backendDelayMs}`);
  return {
    network,
    api,
    backend,
    backends,
    url: `http://${apiIp}:8080/proxy?url=${backendUrl}&timeoutMs=1000`,
    async stop() {
      await Promise.allSettled([api, ...backends].map((c) => c.stop({ timeout: 0 })));
      await network.stop();
    },
  };
}

/** Calls the API n times; returns each call's status and latency seen by the user. */
export async function callApi(url: string, n: number): Promise<{ status: number; ms: number }[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
      await r.text();
      out.push({ status: r.status, ms: performance.now() - t0 });
    } catch {
      out.push({ status: 0, ms: performance.now() - t0 });
    }
  }
  return out;
}
