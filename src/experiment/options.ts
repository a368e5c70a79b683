// The experiment's options, validated before anything starts.
import { z } from 'zod';
import { sloSchema } from '../steady-state/slo.js';

/** The SLO window when none is given, unless the baseline or the observe phase is shorter. */
const DEFAULT_WINDOW_MS = 1000;

const ms = (what: string) => z.number({ error: what }).int({ error: what }).positive({ error: what });

const loadSchema = z
  .strictObject({
    url: z.url({ error: 'an absolute http(s) URL' }).optional(),
    method: z.string().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    request: z
      .custom<(signal: AbortSignal) => Promise<unknown>>((v) => typeof v === 'function', { error: 'a function (signal) => Promise' })
      .optional(),
    rps: z
      .number({ error: 'a rate > 0 requests per second' })
      .positive({ error: 'a rate > 0 requests per second' })
      .max(100_000, { error: 'a rate up to 100000' }),
    concurrency: z.number({ error: 'an integer >= 1' }).int({ error: 'an integer >= 1' }).min(1, { error: 'an integer >= 1' }).optional(),
    timeoutMs: ms('a whole number of milliseconds > 0').optional(),
    okStatus: z.custom<(s: number) => boolean>((v) => typeof v === 'function', { error: 'a function (status) => boolean' }).optional(),
    arrival: z.enum(['uniform', 'poisson'], { error: 'one of "uniform", "poisson"' }).optional(),
    keepAlive: z.boolean().optional(),
    seed: z.number().int().optional(),
  })
  .refine((l) => (l.url === undefined) !== (l.request === undefined), { error: 'exactly one of url or request', path: ['url'] });

const probeSchema = z.custom<import('../steady-state/probes.js').ProbeSpec>(
  (v) =>
    !!v &&
    typeof v === 'object' &&
    typeof (v as { name?: unknown }).name === 'string' &&
    ['http', 'tcp', 'fn', 'promql'].some((k) => k in (v as object)),
  { error: 'a probe { name, http | tcp | fn | promql }' },
);

const faultSpec = z.custom<Record<string, unknown>>((v) => !!v && typeof v === 'object' && 'kind' in (v as object), {
  error: 'a fault spec { kind, target, ... }',
});

const step = z.union([
  faultSpec.refine((v) => !('fault' in v)),
  z.strictObject({
    atMs: z.number({ error: 'ms >= 0' }).min(0, { error: 'ms >= 0' }).default(0),
    durationMs: ms('a whole number of milliseconds > 0').optional(),
    fault: faultSpec,
  }),
]);

export const experimentSchema = z
  .strictObject({
    name: z.string({ error: 'a non-empty string' }).min(1, { error: 'a non-empty string' }),
    hypothesis: z.string({ error: 'a sentence stating what should hold' }).min(1, { error: 'a sentence stating what should hold' }),
    steadyState: z
      .strictObject({
        load: loadSchema.optional(),
        probes: z.array(probeSchema).optional(),
        slos: sloSchema,
        /** Sliding window over which SLOs are judged; default min(1000 ms, baselineMs, durationMs), see below. */
        windowMs: ms('a whole number of milliseconds > 0').optional(),
      })
      .refine((s) => s.load || (s.probes && s.probes.length > 0), { error: 'a load or at least one probe', path: ['load'] }),
    baselineMs: ms('a whole number of milliseconds > 0').default(2000),
    faults: z
      .array(step, { error: 'an array of fault specs or { atMs, durationMs, fault } steps' })
      .min(1, { error: 'at least one fault' }),
    schedule: z.enum(['parallel', 'serial'], { error: 'one of "parallel", "serial"' }).default('parallel'),
    durationMs: ms('a whole number of milliseconds > 0'),
    recovery: z
      .strictObject({ withinMs: ms('a whole number of milliseconds > 0'), maxWaitMs: ms('a whole number of milliseconds > 0').optional() })
      .optional(),
    abortOnBreach: z.boolean({ error: 'true or false' }).default(true),
    rollout: z
      .strictObject({
        steps: z
          .array(z.union([z.number().int().min(1), z.literal('all')]), { error: "an array of target counts (integers >= 1) or 'all'" })
          .min(1, { error: 'at least one step' }),
        holdMs: ms('a whole number of milliseconds > 0'),
      })
      .optional(),
    seed: z.number({ error: 'an integer from 0 to 2147483647' }).int().min(0).max(0x7fffffff).optional(),
    severity: z.enum(['low', 'medium', 'high', 'critical'], { error: 'one of "low", "medium", "high", "critical"' }).optional(),
    observe: z
      .array(
        z.custom<string | { getId(): string }>(
          (v) => typeof v === 'string' || (!!v && typeof v === 'object' && typeof (v as { getId?: unknown }).getId === 'function'),
          { error: 'a started container or a container id or name' },
        ),
        { error: 'a list of containers' },
      )
      .optional(),
  })
  .superRefine((o, ctx) => {
    if (o.rollout) {
      const counts = o.rollout.steps.map((x) => (x === 'all' ? Number.POSITIVE_INFINITY : x));
      if (counts.some((c, k) => k > 0 && c <= (counts[k - 1] as number))) {
        ctx.addIssue({
          code: 'custom',
          path: ['rollout', 'steps'],
          input: o.rollout.steps,
          message: "increasing target counts, 'all' only last",
        });
      }
      const need = o.rollout.steps.length * o.rollout.holdMs;
      if (o.durationMs < need)
        ctx.addIssue({
          code: 'custom',
          path: ['durationMs'],
          input: o.durationMs,
          message: `at least steps x holdMs (${need} ms) with a rollout`,
        });
      if (o.schedule === 'serial' || o.faults.some((f) => 'fault' in f && (f.atMs || f.durationMs))) {
        ctx.addIssue({
          code: 'custom',
          path: ['rollout'],
          input: o.rollout,
          message: 'a rollout of faults that all start at once (schedule "parallel", no atMs or durationMs)',
        });
      }
    }
    const w = o.steadyState.windowMs;
    // A window the user did not give always fits (the default below).
    if (w !== undefined && w > o.durationMs)
      ctx.addIssue({
        code: 'custom',
        path: ['steadyState', 'windowMs'],
        input: w,
        message: `a window no longer than durationMs (${o.durationMs} ms)`,
      });
    if (w !== undefined && w > o.baselineMs)
      ctx.addIssue({
        code: 'custom',
        path: ['steadyState', 'windowMs'],
        input: w,
        message: `a window no longer than baselineMs (${o.baselineMs} ms)`,
      });
    if (o.schedule === 'serial') {
      o.faults.slice(0, -1).forEach((s, i) => {
        if (!('fault' in s) || s.durationMs === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['faults', i, 'durationMs'],
            input: undefined,
            message: 'a durationMs on every serial step but the last',
          });
        }
      });
    }
  })
  .transform((o) => ({
    ...o,
    steadyState: { ...o.steadyState, windowMs: o.steadyState.windowMs ?? Math.min(DEFAULT_WINDOW_MS, o.baselineMs, o.durationMs) },
  }));

export type ExperimentOptionsParsed = z.output<typeof experimentSchema>;
