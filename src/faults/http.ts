// http: faults on the HTTP/1.x requests the target makes. Requests matching
// host, path, method (and the seeded percent) are aborted with a status the
// proxy answers itself, held delayMs, or answered with another body; every
// other request goes to its destination unchanged. connect4 redirects the
// target's connections to the proxy on its gateway (proxied-fault.ts), where
// http-policy.ts parses them with Node's own HTTP server.
import { z } from 'zod';
import { httpPolicy } from '../datapath/http-policy.js';
import type { FaultKind } from './fault-kind.js';
import { millis, nameMatcher, namePattern, percentOf, seededChance } from './datapath-params.js';
import { applyProxied } from './proxied-fault.js';
import { peer, port } from './network-scope.js';

const STATUS = 'an integer HTTP status from 200 to 599';
const PATH = 'a path prefix starting with "/" (e.g. "/api/") or a RegExp tested against path and query';

const schema = z
  .strictObject({
    host: namePattern.optional(),
    path: z.union([z.string().startsWith('/'), z.instanceof(RegExp)], { error: PATH }).optional(),
    method: z
      .string({ error: 'an HTTP method such as "GET" or "POST"' })
      .regex(/^[A-Za-z]{1,16}$/, { error: 'an HTTP method such as "GET" or "POST"' })
      .transform((m) => m.toUpperCase())
      .optional(),
    percent: percentOf('matching requests'),
    abort: z
      .strictObject(
        {
          status: z.number({ error: STATUS }).int({ error: STATUS }).min(200, { error: STATUS }).max(599, { error: STATUS }),
          body: z.string({ error: 'a string: the body of the answer' }).optional(),
        },
        { error: 'an object { status, body? }: the proxy answers with that status itself' },
      )
      .optional(),
    delayMs: millis().optional(),
    body: z.string({ error: 'a string: the response body given instead of the real one' }).optional(),
    peer: peer.optional(),
    port: port.optional(),
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

export const http: FaultKind<z.output<typeof schema>> = {
  kind: 'http',
  schema,
  apply(p, target, ctx) {
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
    return applyProxied('http', target, ctx, p, policy);
  },
};
