// The trading stack of the game day, started with Testcontainers on one network:
//
//   host (load, probes) -> nginx :80 -> api :8080 -> postgres :5432  (orders, quotes)
//                                                 -> redis :6379     (quote cache)
//
// Images are built locally from Debian's packages (fixtures/: postgres, redis, nginx,
// trading-api). Every container but nginx runs with the restart policy "always", as in a
// compose file: a process that dies is started again by the engine, which is what the
// sudden-death and cascade experiments measure. Containers are named
// `trading-<pid>-<n>-<service>` (the kernel observations key on these names) and labelled
// like the test helpers' containers, so a dead run's leftovers are found.
import Docker from 'dockerode';
import { GenericContainer, Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';

export type Service = 'postgres' | 'redis' | 'api' | 'nginx';

export interface StackOptions {
  /** Environment of the trading API (see fixtures/trading-api/server.mjs: POOL_MAX, QUERY_TIMEOUT_MS, ...). */
  apiEnv?: Record<string, string>;
  /** Extra `-c name=value` settings of PostgreSQL. */
  postgresSettings?: Record<string, string>;
}

export interface TradingStack {
  network: StartedNetwork;
  postgres: StartedTestContainer;
  redis: StartedTestContainer;
  api: StartedTestContainer;
  nginx: StartedTestContainer;
  /** Container names (without the leading slash): the keys of `result.kernel[phase]`. */
  names: Record<Service, string>;
  /** What users call: nginx, e.g. http://localhost:32861 (no trailing slash). */
  url: string;
  /**
   * The API itself, bypassing nginx, at its host port of now: an engine restart (restart
   * policy) gives the API a new host port, so this asks the engine each time.
   */
  apiUrl(): Promise<string>;
  /** The API's counters (GET /stats on the API directly). */
  apiStats(): Promise<ApiStats>;
  /** How often the engine restarted a service (its restart policy). */
  restartCount(service: Service): Promise<number>;
  stop(): Promise<void>;
}

export interface ApiStats {
  startedAt: string;
  pid: number;
  requests: number;
  ordersCreated: number;
  ordersFailed: number;
  quotesFromCache: number;
  quotesFromDb: number;
  quotesFromDbFallback: number;
  quotesFailed: number;
  redisErrors: number;
  dbErrors: number;
  dbTimeouts: number;
  poolWaitTimeouts: number;
  deadlineExceeded: number;
  reportsDone: number;
  reportsKilled: number;
  breakers: Record<'db' | 'redis', { state: string; opens: number; failuresInRow: number }>;
  pool: { total: number; idle: number; waiting: number; max: number };
}

/** nginx in front of the API; Docker's DNS is asked again every second, so an API the engine restarted with a new address is found. */
const NGINX_CONF = `resolver 127.0.0.11 valid=1s ipv6=off;
server {
  listen 80 default_server;
  location = /nginx-health { return 200 "ok\\n"; }
  location / {
    set $api http://api:8080;
    proxy_pass $api;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_connect_timeout 1s;
    proxy_read_timeout 5s;
  }
}
`;

let seq = 0;

export async function startTradingStack(opts: StackOptions = {}): Promise<TradingStack> {
  const docker = new Docker();
  const run = `trading-${process.pid}-${++seq}`;
  const names: Record<Service, string> = {
    postgres: `${run}-postgres`,
    redis: `${run}-redis`,
    api: `${run}-api`,
    nginx: `${run}-nginx`,
  };
  const network = await new Network().start();
  const base = (image: string, service: Service) =>
    new GenericContainer(`vitest-chaos/${image}:latest`)
      .withName(names[service])
      .withNetwork(network)
      .withNetworkAliases(service)
      .withLabels({ 'vitest-chaos.test': `trading-${service}`, 'vitest-chaos.run': String(process.pid) });
  const pgSettings = { ...opts.postgresSettings };
  const started: StartedTestContainer[] = [];
  const keep = (c: StartedTestContainer) => {
    started.push(c);
    return c;
  };
  try {
    const [postgres, redis, api] = await Promise.all([
      base('postgres', 'postgres')
        .withCommand([
          'postgres',
          ...['listen_addresses=*', 'fsync=off', 'synchronous_commit=off', 'full_page_writes=off', 'max_connections=100']
            .filter((s) => !((s.split('=')[0] as string) in pgSettings))
            .flatMap((s) => ['-c', s]),
          ...Object.entries(pgSettings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
        ])
        .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/))
        .start()
        .then(keep),
      base('redis', 'redis')
        .withExposedPorts(6379)
        .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
        .start()
        .then(keep),
      // The API waits for the database itself ("listening" once its schema exists).
      base('trading-api', 'api')
        .withEnvironment(opts.apiEnv ?? {})
        .withExposedPorts(8080)
        .withWaitStrategy(Wait.forLogMessage(/listening http=/))
        .start()
        .then(keep),
    ]);
    const nginx = keep(
      await base('nginx', 'nginx')
        .withCopyContentToContainer([{ content: NGINX_CONF, target: '/etc/nginx/conf.d/default.conf' }])
        .withExposedPorts(80)
        .withWaitStrategy(Wait.forHttp('/nginx-health', 80))
        .start(),
    );
    await Promise.all([postgres, redis, api].map((c) => docker.getContainer(c.getId()).update({ RestartPolicy: { Name: 'always' } })));
    const byService: Record<Service, StartedTestContainer> = { postgres, redis, api, nginx };
    const apiUrl = async () => {
      const info = await docker.getContainer(api.getId()).inspect();
      const port = info.NetworkSettings.Ports['8080/tcp']?.find((b) => !b.HostIp.includes(':'))?.HostPort;
      if (!port) throw new Error(`the api (${names.api}) has no host port for 8080/tcp: is it running? (${info.State.Status})`);
      return `http://${api.getHost()}:${port}`;
    };
    return {
      network,
      postgres,
      redis,
      api,
      nginx,
      names,
      url: `http://${nginx.getHost()}:${nginx.getMappedPort(80)}`,
      apiUrl,
      async apiStats() {
        const r = await fetch(`${await apiUrl()}/stats`, { signal: AbortSignal.timeout(2000) });
        return (await r.json()) as ApiStats;
      },
      async restartCount(service) {
        return (await docker.getContainer(byService[service].getId()).inspect()).RestartCount;
      },
      async stop() {
        await Promise.allSettled(started.map((c) => c.stop({ timeout: 0 })));
        await network.stop();
      },
    };
  } catch (err) {
    await Promise.allSettled(started.map((c) => c.stop({ timeout: 0 })));
    await network.stop().catch(() => {});
    throw err;
  }
}
