// http: faults on the HTTP/1.x requests the target makes. Requests matching
// host, path, method (and the seeded percent) are aborted with a status the
// proxy answers itself, held delayMs, or answered with another body; every
// other request goes to its destination unchanged. connect4 redirects the
// target's connections to the proxy on its gateway (proxied-fault.ts), where
// http-policy.ts parses them with Node's own HTTP server.
import { z } from 'zod';
import { httpPolicy, type HttpPolicyCounters } from '../../datapath/http-policy.js';
import { nameMatcher, seededChance } from '../../datapath/match.js';
import { applyProxied, type ProxiedStats } from '../../datapath/proxied-fault.js';
import { applyInboundProxied, type InboundCounters } from '../../datapath/inbound-proxy.js';
import type { FaultKind } from '../fault-kind.js';
import { connections, connectionScope, millis, namePattern, percent, resolveConnectionScope } from '../params.js';

const STATUS = 'an integer HTTP status from 200 to 599';
const PATH = 'a path prefix starting with "/" (e.g. "/api/") or a RegExp tested against path and query';

const schema = z
  .strictObject({
    /** Only requests whose `Host` (port left out) matches, exactly or as a glob ('*.svc.local'), case-insensitive. Default: every host. */
    host: namePattern.optional(),
    /** A string: prefix of the request target (path and query); a RegExp: tested against it. Default: every path. */
    path: z.union([z.string({ error: PATH }).startsWith('/', { error: PATH }), z.instanceof(RegExp)], { error: PATH }).optional(),
    /** Only requests with this method, case-insensitive. Default: every method. */
    method: z
      .string({ error: 'an HTTP method such as "GET" or "POST"' })
      .regex(/^[A-Za-z]{1,16}$/, { error: 'an HTTP method such as "GET" or "POST"' })
      .transform((m) => m.toUpperCase())
      .optional(),
    /** Share of matching requests that get the fault, 0-100, drawn with the fault's seed. Default 100. */
    percent,
    /** The proxy answers itself with this status (200-599) and body (default empty); the destination never sees the request. */
    abort: z
      .strictObject(
        {
          status: z.number({ error: STATUS }).int({ error: STATUS }).min(200, { error: STATUS }).max(599, { error: STATUS }),
          body: z.string({ error: 'a string: the body of the answer' }).optional(),
        },
        { error: 'an object { status, body? }: the proxy answers with that status itself' },
      )
      .optional(),
    /** Hold matching requests this long, in ms (0-600000), before passing them on (or aborting them). */
    delayMs: millis().optional(),
    /** The destination's answer goes back with this body instead. */
    body: z.string({ error: 'a string: the response body given instead of the real one' }).optional(),
    ...connectionScope,
    /**
     * `'outbound'` (requests the target makes), `'inbound'` (requests it serves: new connections to its
     * ports, from the test process through a mapped port, other containers, the host) or `'all'`. Default `'all'`.
     */
    connections,
  })
  .refine((p) => p.abort !== undefined || p.delayMs !== undefined || p.body !== undefined, {
    error: 'at least one of abort, delayMs, body: what happens to matching requests',
    path: ['abort'],
  })
  .refine((p) => p.abort === undefined || p.body === undefined, {
    error: 'abort or body, not both (an aborted request has no upstream body to replace)',
    path: ['body'],
  });

export type HttpParams = z.input<typeof schema>;

/**
 * Connects redirected, the proxies' relays (outbound and inbound added up), the requests seen, faulted,
 * aborted, delayed, rewritten; inbound: the ports covered, connections relayed, and those accepted
 * before the inject that the fault cannot reach.
 */
export type HttpStats = ProxiedStats<HttpPolicyCounters> & InboundCounters;

const RELAY_COUNTERS = ['connections', 'unknownConnections', 'upstreamErrors', 'bytesUp', 'bytesDown'] as const;

export const http: FaultKind<'http', typeof schema, HttpStats> = {
  kind: 'http',
  matched: (s) => s.connectsMatched + s.connections,
  matchedWhat: 'connections of the target that fit peer and port',
  schema,
  programs: ['connect'],
  async apply(p, target, ctx) {
    const host = p.host === undefined ? () => true : nameMatcher([p.host]);
    const path = p.path;
    const chosen = seededChance(ctx.seed, p.percent);
    const policy = httpPolicy({
      matches(req) {
        if (p.method !== undefined && req.method !== p.method) return false;
        if (!host((req.headers.host ?? '').replace(/:\d+$/, ''))) return false;
        const url = req.url ?? '/';
        if (typeof path === 'string' && !url.startsWith(path)) return false;
        if (path instanceof RegExp && !new RegExp(path.source, path.flags.replace(/[gy]/g, '')).test(url)) return false;
        return chosen(); // drawn only for requests that match, so the sequence is the same per seed
      },
      abort: p.abort,
      delayMs: p.delayMs,
      body: p.body,
    });
    const scope = await resolveConnectionScope(p, ctx);
    const outbound =
      p.connections === 'inbound' ? null : await applyProxied('http', target, ctx, { ...scope }, policy, { sharedPolicy: true });
    let inbound: Awaited<ReturnType<typeof applyInboundProxied>> | null = null;
    try {
      if (p.connections !== 'outbound') inbound = await applyInboundProxied('http', target, ctx, scope, policy);
    } catch (err) {
      await outbound?.revert();
      await policy.close?.();
      throw err;
    }
    // The policy (its HTTP server) is closed once both proxies carry nothing any more.
    void Promise.all([outbound?.finished, inbound?.finished]).then(() => policy.close?.());
    const noConnects = { connectsMatched: 0, connectsRejected: 0, connectsRedirected: 0 };
    const noInbound: InboundCounters = { inboundPorts: 0, inboundConnections: 0, inboundConnectionsUnreached: 0 };
    return {
      stats(): HttpStats {
        const out = outbound?.stats();
        const inb = inbound?.stats();
        const s = { ...noConnects, ...policy.counters, ...out, ...noInbound, ...inb } as HttpStats;
        for (const k of RELAY_COUNTERS) s[k] = (out?.[k] ?? 0) + (inb?.[k] ?? 0);
        return s;
      },
      async revert() {
        // Both proxies hand their connections back: requests in flight complete, unfaulted.
        try {
          await inbound?.revert();
        } finally {
          await outbound?.revert();
        }
      },
    };
  },
};
