// One DNS interception per target, shared by the dns faults on it: bpf/dns.bpf.c
// sends the target's queries for each of its nameservers to a fake resolver of
// ours on its gateway (fake-dns.ts), which asks each fault's rule in the order
// they were injected and passes what none of them fails to the real
// nameserver from inside the target's network namespace (netns-forwarder.ts).
// Sharing it is what lets two dns faults on one target both apply. It goes
// when the last fault on the target is reverted.
import { readFileSync } from 'node:fs';
import { ChaosSpecError } from '../contracts/errors.js';
import { FakeDns, type DnsAnswer, type DnsCounters } from './fake-dns.js';
import { NetnsForwarder } from './netns-forwarder.js';
import { ipv4ToInt } from '../kernel/kernel.js';
import type { SlotRef } from '../kernel/slotted-programs.js';
import type { ResolvedTarget } from '../targets/resolve-target.js';
import type { FaultStats } from '../contracts/applied-fault.js';
import { gatewayOf, type DatapathContext } from './proxied-fault.js';

export interface DnsRule {
  /** The answer for a query of this name, or null: the next rule (or the real nameserver) answers. */
  answerFor(name: string): DnsAnswer | null;
}

const live = new Map<bigint, Promise<DnsInterceptor>>();

/** The IPv4 nameservers of the container's /etc/resolv.conf (read through its root). */
function nameserversOf(pid: number): string[] {
  let text = '';
  try {
    text = readFileSync(`/proc/${pid}/root/etc/resolv.conf`, 'utf8');
  } catch {
    return [];
  }
  const out = [...text.matchAll(/^\s*nameserver\s+(\d{1,3}(?:\.\d{1,3}){3})\s*$/gm)].map((m) => m[1] as string);
  return out.slice(0, 3); // the resolver reads at most three (MAXNS)
}

export class DnsInterceptor {
  private readonly rules: DnsRule[] = [];
  private readonly refs: SlotRef[] = [];
  private readonly servers: FakeDns[] = [];
  private forwarder?: NetnsForwarder;
  private lastKernel: FaultStats = {};
  private handle?: Promise<DnsInterceptor>;
  private stopped = false;
  readonly counters: DnsCounters = { dnsQueries: 0, dnsFaulted: 0, dnsForwarded: 0, dnsForwardFailed: 0, dnsIgnored: 0 };

  private constructor(
    private readonly target: ResolvedTarget,
    private readonly ctx: DatapathContext,
  ) {}

  /** Adds a rule to the target's interception, setting it up first if it has none. */
  static async add(target: ResolvedTarget, ctx: DatapathContext, rule: DnsRule): Promise<DnsInterceptor> {
    for (;;) {
      let pending = live.get(target.cgroup.id);
      if (!pending) {
        pending = new DnsInterceptor(target, ctx).start();
        live.set(target.cgroup.id, pending);
        pending.catch(() => live.get(target.cgroup.id) === pending && live.delete(target.cgroup.id));
      }
      const it = await pending;
      if (it.stopped) continue; // its last fault was reverted meanwhile
      it.handle = pending;
      it.rules.push(rule);
      return it;
    }
  }

  /** Removes a rule; the last one takes the interception down. Idempotent. */
  async remove(rule: DnsRule): Promise<void> {
    const i = this.rules.indexOf(rule);
    if (i < 0) return;
    this.rules.splice(i, 1);
    if (this.rules.length > 0) return;
    if (live.get(this.target.cgroup.id) === this.handle) live.delete(this.target.cgroup.id);
    await this.stop();
  }

  /** The kernel's counters for the target (summed over its nameservers). */
  kernelStats(): FaultStats {
    if (this.refs.length === 0) return { ...this.lastKernel };
    const sum: FaultStats = { dnsConnectsRedirected: 0, dnsSendsRedirected: 0, dnsRepliesRewritten: 0 };
    for (const r of this.refs) {
      const s = this.ctx.kernel.dns.readStats(r);
      if (!s) continue;
      sum.dnsConnectsRedirected! += Number(s.connects_redirected);
      sum.dnsSendsRedirected! += Number(s.sends_redirected);
      sum.dnsRepliesRewritten! += Number(s.replies_rewritten);
    }
    return sum;
  }

  private async start(): Promise<DnsInterceptor> {
    const { target, ctx } = this;
    const host = gatewayOf('dns', target);
    const nameservers = nameserversOf(target.pid);
    if (nameservers.length === 0) {
      throw new ChaosSpecError('chaos.inject(dns)', [
        { field: 'target', value: target.name, expected: 'a container whose /etc/resolv.conf names an IPv4 nameserver' },
      ]);
    }
    const forwarder = await NetnsForwarder.start(target.pid, ctx.journal(), `dns forwarder in the network namespace of ${target.name}`);
    this.forwarder = forwarder;
    const clients = new Set(target.networks.map((n) => n.ipv4));
    try {
      for (const address of nameservers) {
        const nameserver = { address, port: 53 };
        const server = new FakeDns({
          host,
          nameserver,
          clients,
          counters: this.counters,
          answerFor: (name) => {
            for (const r of this.rules) {
              const a = r.answerFor(name);
              if (a !== null) return a;
            }
            return null;
          },
          forward: (proto, query) => forwarder.ask(proto, nameserver, query),
        });
        this.servers.push(server);
        const at = await server.listen();
        const ref = ctx.kernel.dns.acquire(target.cgroup.directory, target.cgroup.id);
        this.refs.push(ref);
        ctx.kernel.dns.enable(ref, {
          ns_addr: ipv4ToInt(address),
          ns_port: 53,
          redirect_addr: ipv4ToInt(at.address),
          redirect_port: at.port,
        });
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    return this;
  }

  private async stop(): Promise<void> {
    this.stopped = true;
    // Stop redirecting first, then stop answering.
    this.lastKernel = this.kernelStats();
    for (const r of this.refs.splice(0)) this.ctx.kernel.dns.release(r);
    for (const s of this.servers.splice(0)) await s.close();
    await this.forwarder?.close();
    this.forwarder = undefined;
  }
}
