// dns: the target's lookups of names matching `names` fail (SERVFAIL,
// NXDOMAIN, or no answer at all); every other name resolves as before. The
// target's queries to its nameserver (Docker's 127.0.0.11 on a user-defined
// network) are redirected by bpf/dns.bpf.c to a fake resolver on its gateway,
// which answers for the fault and asks the real nameserver, from inside the
// target's network namespace, for everything else (dns-interceptor.ts).
import { z } from 'zod';
import { DnsInterceptor, type DnsRule } from '../../datapath/dns-interceptor.js';
import type { DnsCounters } from '../../datapath/fake-dns.js';
import { nameMatcher, seededChance } from '../../datapath/match.js';
import type { FaultKind } from '../fault-kind.js';
import { namePattern, percent } from '../params.js';

const NAMES = 'a non-empty list of names or glob patterns, e.g. ["backend", "*.svc.local"]';

const schema = z.strictObject({
  /** Names or glob patterns whose lookups fail, e.g. ['backend', '*.svc.local']; `*` spans dots too; case-insensitive. Required. */
  names: z.array(namePattern, { error: NAMES }).min(1, { error: NAMES }),
  /** 'NXDOMAIN' (no such name), 'SERVFAIL' (the resolver failed), 'drop' (no answer: the target waits for its timeout). Default 'NXDOMAIN'. */
  answer: z
    .enum(['SERVFAIL', 'NXDOMAIN', 'drop'], { error: 'one of "SERVFAIL", "NXDOMAIN", "drop" (no answer at all)' })
    .default('NXDOMAIN'),
  /** Share of matching lookups that fail, 0-100, drawn with the fault's seed. Default 100. */
  percent,
});

export type DnsParams = z.input<typeof schema>;

/**
 * This fault's failed lookups, beside what the target's interception counted
 * (shared by every dns fault on it): queries seen, forwarded, and the kernel's redirects.
 */
export type DnsStats = DnsCounters & Record<string, number> & { dnsLookupsFailed: number };

export const dns: FaultKind<'dns', typeof schema, DnsStats> = {
  kind: 'dns',
  matched: (s) => s.dnsQueries,
  matchedWhat: 'DNS queries of the target',
  schema,
  programs: ['dns'],
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
