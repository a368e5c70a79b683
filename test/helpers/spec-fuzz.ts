// Generated fault specs for the property-based fuzz (test/integration/spec-fuzz.test.ts
// and the soak): a valid spec of each kind, mutated by fast-check with junk
// (wrong types, NaN, -0, huge numbers, strings for numbers, nested objects),
// boundary values, extra and missing fields, unknown kinds and targets that are
// gone or not ours. Each spec carries the fields it touched, so an error can be
// checked to name one of them.
import fc from 'fast-check';
import type { StartedTestContainer } from 'testcontainers';
import { FAULT_KINDS } from '../../src/faults/kinds.js';

export type Params = Record<string, unknown>;

export interface FuzzTargets {
  target: StartedTestContainer;
  /** A peer container (read only). */
  peer: StartedTestContainer;
  /** The id of a container that was removed. */
  goneId: string;
  /** The id of a running container Testcontainers did not start. */
  strangerId: string;
}

const MiB = 1 << 20;

/** A valid spec's own parameters per kind (the ones the contract tests use). */
export function baseParams(kind: string, t: FuzzTargets): Params {
  const base: Record<string, Params> = {
    'network-loss': { percent: 50, direction: 'ingress' },
    'network-partition': { peer: t.peer, action: 'reject' },
    'network-corrupt': { percent: 10, direction: 'ingress', port: 9000 },
    'network-duplicate': { percent: 10, direction: 'egress', port: 9000 },
    'network-bandwidth': { rate: '4mbit', direction: 'egress' },
    'network-latency': { latencyMs: 50, peer: t.peer },
    'network-reset': { afterBytes: 0, peer: t.peer },
    'network-timeout': { peer: t.peer },
    'network-slow-close': { delayMs: 50, peer: t.peer },
    http: { host: 'backend', path: '/delay', abort: { status: 503, body: 'injected' } },
    dns: { names: ['backend'] },
    'cpu-throttle': { cpus: 0.5 },
    'cpu-stress': { workers: 1, loadPercent: 20 },
    'memory-stress': { bytes: 16 * MiB },
    'memory-limit': { bytes: 512 * MiB },
    'io-throttle': { writeBytesPerSec: MiB, readIops: 100 },
    'disk-fill': { bytes: MiB },
    'process-kill': {},
    'container-pause': {},
    'container-stop': { timeoutSec: 0 },
    'container-restart': {},
    'crash-on-syscall': { syscall: 'mkdirat' },
  };
  const p = base[kind];
  if (!p) throw new Error(`no base parameters for ${kind}: add them to test/helpers/spec-fuzz.ts`);
  return p;
}

/** The fields of a kind's schema. */
export function fieldsOf(kind: string): string[] {
  const k = FAULT_KINDS.find((x) => x.kind === kind);
  if (!k) return [];
  return Object.keys((k.schema as unknown as { shape?: Record<string, unknown> }).shape ?? {});
}

const KIND_NAMES = FAULT_KINDS.map((k) => k.kind as string);

/** Values a field should not take, and edges it may: NaN, -0, huge numbers, strings for numbers, nested junk. */
export const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    Number.NaN,
    -0,
    0,
    -1,
    1,
    0.5,
    0.001,
    99.999,
    100,
    100.0001,
    101,
    1023,
    1024,
    65535,
    65536,
    60000,
    60001,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32,
    2 ** 53,
    Number.MAX_SAFE_INTEGER + 2,
    1e308,
    -1e308,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.MIN_VALUE,
  ),
  fc.double(),
  fc.integer(),
  fc.bigInt(),
  fc.constantFrom(
    '10',
    '0',
    '-0',
    '',
    ' ',
    '1e3',
    'NaN',
    'Infinity',
    '0x10',
    'egress',
    'both',
    'all',
    'SIGKILL',
    '/',
    '4mbit',
    'x'.repeat(5000),
  ),
  fc.string({ maxLength: 12 }),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 4 })), { maxLength: 3 }),
  fc.anything({ maxDepth: 2, maxKeys: 3 }),
  fc.constant(new Date(0)),
  fc.constant(/re/),
  fc.constant(() => 1),
  fc.constant(Symbol('junk')),
);

type Mutation =
  | { op: 'replace'; field: string; value: unknown }
  | { op: 'extra'; field: string; value: unknown }
  | { op: 'remove'; field: string }
  | { op: 'kind'; value: unknown }
  | { op: 'target'; value: 'gone' | 'stranger' | 'none' | 'empty' | 'twice' | { junk: unknown } }
  | { op: 'common'; field: 'seed' | 'mode' | 'value'; value: unknown };

export interface FuzzCase {
  spec: Params;
  /** Fields a mutation touched (an error must name one of them). */
  touched: Set<string>;
  mutations: Mutation[];
}

function mutation(kind: string): fc.Arbitrary<Mutation> {
  const fields = fieldsOf(kind);
  const field = fields.length ? fc.constantFrom(...fields) : fc.constant('percent');
  return fc.oneof(
    { weight: 5, arbitrary: fc.record({ op: fc.constant('replace' as const), field, value: junk }) },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('extra' as const),
        field: fc.oneof(
          fc.constantFrom('latncyMs', 'pecent', 'Percent', 'targets', 'durationMs', '__proto__', 'constructor'),
          fc.string({ minLength: 1, maxLength: 8 }),
        ),
        value: junk,
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), field }) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('kind' as const),
        value: fc.oneof(
          fc.string({ maxLength: 16 }).filter((s) => !KIND_NAMES.includes(s)),
          fc.constantFrom('network-chaos', 'Network-Loss', 'network_loss', ` ${kind}`, `${kind} `, '', null, undefined, 7, [
            'network-loss',
          ]),
        ),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('target' as const),
        value: fc.oneof(
          fc.constantFrom('gone' as const, 'stranger' as const, 'none' as const, 'empty' as const, 'twice' as const),
          fc.record({ junk }),
          // ids with request-path characters once reached the engine (and an uncaught redirect)
          fc.record({ junk: fc.constantFrom('/', '.', '..', '../x', '//x', 'a/b', '%', '?a', ' ', '', 'x'.repeat(300)) }),
        ),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('common' as const),
        field: fc.constantFrom('seed' as const, 'mode' as const, 'value' as const),
        value: junk,
      }),
    },
  );
}

/** Specs of one kind: unchanged (valid), or with up to three mutations. */
export function fuzzCases(kind: string, t: FuzzTargets): fc.Arbitrary<FuzzCase> {
  return fc
    .oneof(
      { weight: 1, arbitrary: fc.constant([] as Mutation[]) },
      { weight: 6, arbitrary: fc.array(mutation(kind), { minLength: 1, maxLength: 3 }) },
    )
    .map((mutations) => {
      const spec: Params = { kind, target: t.target, ...baseParams(kind, t) };
      const touched = new Set<string>();
      for (const m of mutations) {
        switch (m.op) {
          case 'replace':
          case 'extra':
            Object.defineProperty(spec, m.field, { value: m.value, enumerable: true, configurable: true, writable: true });
            touched.add(m.field);
            break;
          case 'remove':
            delete spec[m.field];
            touched.add(m.field);
            break;
          case 'kind':
            spec.kind = m.value;
            touched.add('kind');
            break;
          case 'target': {
            const v = m.value;
            if (v === 'gone') spec.target = t.goneId;
            else if (v === 'stranger') spec.target = t.strangerId;
            else if (v === 'none') delete spec.target;
            else if (v === 'empty') spec.target = [];
            else if (v === 'twice') spec.target = [t.target, t.target.getId()];
            else spec.target = v.junk;
            touched.add('target');
            break;
          }
          case 'common':
            spec[m.field] = m.value;
            touched.add(m.field);
            if (m.field === 'mode') touched.add('value');
            if (m.field === 'value') touched.add('mode');
            break;
        }
      }
      return { spec, touched, mutations };
    });
}

/** A mutation list as text, for a failure's message. */
export function describeCase(c: FuzzCase): string {
  return JSON.stringify(c.mutations, (_k, v) =>
    typeof v === 'bigint' ? `${v}n` : typeof v === 'symbol' ? String(v) : typeof v === 'function' ? 'fn' : Number.isNaN(v) ? 'NaN' : v,
  );
}
