// dns: the target's lookups of names matching `names` fail (SERVFAIL,
// NXDOMAIN, or no answer at all); every other name resolves as before. The
// target's queries to its nameserver (Docker's 127.0.0.11 on a user-defined
// network) are redirected by bpf/dns.bpf.c to a fake resolver on its gateway,
// which answers for the fault and asks the real nameserver, from inside the
// target's network namespace, for everything else (dns-interceptor.ts).
import { z } from 'zod';
import type { FaultKind } from './fault-kind.js';
import { nameMatcher, namePattern, percentOf, seededChance } from './datapath-params.js';
import { DnsInterceptor, type DnsRule } from './dns-interceptor.js';

const NAMES = 'a non-empty list of names or glob patterns, e.g. ["backend", "*.svc.local"]';

const schema = z.strictObject({
  names: z.array(namePattern, { error: NAMES }).min(1, { error: NAMES }),
  answer: z
    .enum(['SERVFAIL', 'NXDOMAIN', 'drop'], { error: 'one of "SERVFAIL", "NXDOMAIN", "drop" (no answer at all)' })
    .default('NXDOMAIN'),
  percent: percentOf('matching lookups'),
});

export type DnsParams = z.input<typeof schema>;

export const dns: FaultKind<z.output<typeof schema>> = {
  kind: 'dns',
  schema,
  async apply(p, target, ctx) {
    const matches = nameMatcher(p.names);
    const chosen = seededChance(ctx.seed, p.percent);
    const counters = { dnsLookupsFailed: 0 };
    const rule: DnsRule = {
      answerFor(name) {
        if (!matches(name) || !chosen()) return null;
        counters.dnsLookupsFailed++;
        return p.answer;
      },
    };
    const interception = await DnsInterceptor.add(target, ctx, rule);
    return {
      // Beside this fault's own count, what the target's interception counted (shared by its dns faults).
      stats: () => ({ ...interception.counters, ...interception.kernelStats(), ...counters }),
      revert: () => interception.remove(rule),
    };
  },
};
