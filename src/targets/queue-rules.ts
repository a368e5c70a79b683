// iptables rules in a container's network namespace that queue its packets to
// an NFQUEUE reader of ours (src/kernel/packet-queue.ts). One chain per queue
// and hook (VC-Q<queue>-O, jumped to from OUTPUT: what the target sends;
// VC-Q<queue>-I from INPUT: what it receives), journaled before they are made
// (the reaper deletes them if we die) and deleted whole on revert. The rules
// pass packets on when no reader is bound (--queue-bypass), so between our
// death and the reaper the target only loses the fault. IPv6 packets have the
// same chains in the IPv6 tables (ip6tables), journaled with `family: 6`.
// Transactions go through one long-lived iptables-restore per netns and
// family (restore-session.ts): no process start per inject or revert.
import type Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { promisify } from 'node:util';
import { deleteQueueChain } from '../journal/undo.js';
import { restore } from './restore-session.js';
import type { Journal } from '../journal/journal.js';

const run = promisify(execFile);

export type IpFamily = 4 | 6;

/** iptables match arguments, one array per rule, for what the target sends (OUTPUT) and receives (INPUT). */
export interface HookRules {
  output: readonly (readonly string[])[];
  input: readonly (readonly string[])[];
}

export interface QueueRuleSpec {
  containerId: string;
  /** Docker's bind mount of the container's netns (SandboxKey). */
  netns: string;
  queue: number;
  /** The rules per family: 4 in the IPv4 tables (iptables), 6 in the IPv6 ones (ip6tables). */
  rules: Partial<Record<IpFamily, HookRules>>;
  description: string;
}

// The last SandboxKey seen per container: a Docker round trip saved on each
// inject, and still checked (the same inode as the process's netns) each time.
const sandboxes = new Map<string, string>();

const sameNetns = (netns: string, pid: number): boolean => {
  try {
    return netns !== '' && statSync(netns).ino === statSync(`/proc/${pid}/ns/net`).ino;
  } catch {
    return false;
  }
};

/** The container's netns as Docker names it (SandboxKey), checked to be pid's; null if it is not. */
export async function sandboxOf(docker: Docker, containerId: string, pid: number): Promise<string | null> {
  const known = sandboxes.get(containerId);
  if (known !== undefined && sameNetns(known, pid)) return known;
  const info = await docker.getContainer(containerId).inspect();
  const netns = info.NetworkSettings?.SandboxKey ?? '';
  if (!sameNetns(netns, pid)) {
    sandboxes.delete(containerId);
    return null;
  }
  if (sandboxes.size > 256) sandboxes.clear();
  sandboxes.set(containerId, netns);
  return netns;
}

export interface InstalledQueueRules {
  /** Deletes the chains (idempotent). */
  remove(): Promise<void>;
  /** Adds rules to the OUTPUT chain (`'O'`) or the INPUT one (`'I'`) of a family while installed; false if that chain was not made. */
  append(family: IpFamily, hook: 'O' | 'I', rules: readonly (readonly string[])[]): Promise<boolean>;
  /** Deletes rules added with append (missing ones are ignored). */
  drop(family: IpFamily, hook: 'O' | 'I', rules: readonly (readonly string[])[]): Promise<void>;
}

const queueTarget = (r: readonly string[], queue: number) =>
  r.includes('-j') ? [] : ['-j', 'NFQUEUE', '--queue-num', String(queue), '--queue-bypass'];

const iptablesOf = (family: IpFamily) => (family === 6 ? 'ip6tables' : 'iptables');

/** Installs the rules (both families at once); returns their handle. */
export async function installQueueRules(spec: QueueRuleSpec, journal: Journal): Promise<InstalledQueueRules> {
  const name = (s: string) => `VC-Q${spec.queue}-${s}`;
  const families = ([4, 6] as const).flatMap((family) => {
    const r = spec.rules[family];
    if (!r) return [];
    const chains = (
      [
        ['O', 'OUTPUT', r.output],
        ['I', 'INPUT', r.input],
      ] as const
    ).filter(([, , rules]) => rules.length > 0);
    return chains.length ? [{ family, chains }] : [];
  });
  const entry = journal.record(
    spec.description,
    families.flatMap(({ family, chains }) =>
      chains.map(([s]) => ({
        type: 'iptables-chain-del' as const,
        containerId: spec.containerId,
        netns: spec.netns,
        chain: name(s),
        ...(family === 6 ? { family: 6 as const } : {}),
      })),
    ),
  );
  const text = (chains: (typeof families)[number]['chains']) => {
    const lines = ['*mangle'];
    for (const [s] of chains) lines.push(`:${name(s)} - [0:0]`);
    for (const [s, , rules] of chains) {
      // A rule with its own target (RETURN) keeps it; the others queue.
      for (const r of rules) lines.push(`-A ${name(s)} ${[...r, ...queueTarget(r, spec.queue)].join(' ')}`);
    }
    for (const [s, hook] of chains) lines.push(`-I ${hook} 1 -j ${name(s)}`);
    lines.push('COMMIT', '');
    return lines.join('\n');
  };
  try {
    const done = await Promise.allSettled(families.map(({ family, chains }) => restore(spec.netns, family, text(chains))));
    const failed = done.find((d): d is PromiseRejectedResult => d.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    await journal.revert(entry).catch(() => undefined);
    throw err;
  }
  let removed = false;
  const made = new Set<string>(families.flatMap(({ family, chains }) => chains.map(([s]) => `${family}${s}`)));
  // Every chain of a family in one transaction, the families at once; if that
  // fails (a jump or chain already gone), the journal's undo step by step.
  const removeAll = async () => {
    const done = await Promise.allSettled(
      families.map(({ family, chains }) => {
        const lines = ['*mangle'];
        for (const [s, hook] of chains) lines.push(`-D ${hook} -j ${name(s)}`, `-F ${name(s)}`, `-X ${name(s)}`);
        lines.push('COMMIT', '');
        return restore(spec.netns, family, lines.join('\n'));
      }),
    );
    if (done.some((d) => d.status === 'rejected')) await journal.revert(entry);
    else journal.forget(entry);
  };
  const ipt = (family: IpFamily, args: string[]) =>
    run('nsenter', [`--net=${spec.netns}`, '--', iptablesOf(family), '-w', '5', '-t', 'mangle', ...args]);
  return {
    async remove() {
      if (removed) return;
      removed = true;
      await removeAll();
    },
    async append(family, hook, rules) {
      if (removed || !made.has(`${family}${hook}`)) return false;
      const lines = ['*mangle', ...rules.map((r) => `-A ${name(hook)} ${[...r, ...queueTarget(r, spec.queue)].join(' ')}`), 'COMMIT', ''];
      await restore(spec.netns, family, lines.join('\n'));
      return true;
    },
    async drop(family, hook, rules) {
      if (removed || !made.has(`${family}${hook}`)) return;
      for (const r of rules) await ipt(family, ['-D', name(hook), ...r, ...queueTarget(r, spec.queue)]).catch(() => undefined);
    },
  };
}

/** The chains of ours in a netns (for tests and status), a fault's (VC-Q...) and the kept slot rules (VC-S-O, VC-S-I): IPv6 ones as `ip6:VC-...`. */
export async function queueChainsIn(netns: string): Promise<string[]> {
  const out: string[] = [];
  for (const family of [4, 6] as const) {
    const { stdout } = await run('nsenter', [`--net=${netns}`, '--', iptablesOf(family), '-w', '5', '-t', 'mangle', '-S']);
    for (const m of new Set([...stdout.matchAll(/^-N ((?:VC-Q\d+|VC-S)-[OI])$/gm)].map((x) => x[1] as string))) {
      out.push(family === 6 ? `ip6:${m}` : m);
    }
  }
  return out;
}

export { deleteQueueChain };

export interface RedirectRuleSpec {
  containerId: string;
  netns: string;
  /** Our listener in the netns: connections to `ports` are sent there. */
  listenerPort: number;
  /** The target's own ports (1-15 per rule, any number). */
  ports: readonly number[];
  /**
   * Per family, only connections from these sources (CIDRs); an empty list: from anywhere.
   * A family left out gets no rule (its connections go straight to the server).
   */
  sources: Partial<Record<IpFamily, readonly string[]>>;
  description: string;
}

/**
 * NAT REDIRECT of the connections the target accepts on `ports` to our
 * listener in its netns (chain VC-H<listenerPort>-P in nat PREROUTING, in the
 * IPv4 tables and, for IPv6 sources, the IPv6 ones), journaled before it is
 * made; returns the remover (idempotent). Only new connections are
 * redirected, by their SYN: conntrack starts in a netns with its first rule
 * that needs it and would pick the connections open before up mid-stream as
 * new ones; redirecting those would reset them.
 */
/** The REDIRECT of an inbound proxy: disarm() stops redirecting new connections, remove() deletes the chain. */
export interface InstalledRedirect {
  /**
   * Stops redirecting: new connections go straight to the server again. The
   * connections already redirected keep their translation: the chain and its jump
   * stay (the nat hooks), and a rule that needs conntrack (a RETURN for
   * `--ctstate DNAT`) takes the REDIRECT's place. Without a rule that needs it,
   * conntrack stops in the netns, their packets go untranslated and the client
   * resets them (measured: the next request on a kept-alive connection failed).
   */
  disarm(): Promise<void>;
  /** Deletes the chain (idempotent). */
  remove(): Promise<void>;
}

export async function installRedirectRules(spec: RedirectRuleSpec, journal: Journal): Promise<InstalledRedirect> {
  const chain = `VC-H${spec.listenerPort}-P`;
  const families = ([4, 6] as const).filter((f) => spec.sources[f] !== undefined);
  const entry = journal.record(
    spec.description,
    families.map((f) => ({
      type: 'iptables-chain-del' as const,
      containerId: spec.containerId,
      netns: spec.netns,
      chain,
      ...(f === 6 ? { family: 6 as const } : {}),
    })),
  );
  const text = (f: IpFamily) => {
    const lines = ['*nat', `:${chain} - [0:0]`];
    const list = spec.sources[f] ?? [];
    const sources = list.length ? list : [null];
    // A plain --dport for a few ports (re-creating a multiport rule costs the kernel 10-15 ms here), multiport for many.
    const ports =
      spec.ports.length <= 4
        ? spec.ports.map((p) => `--dport ${p}`)
        : Array.from(
            { length: Math.ceil(spec.ports.length / 15) },
            (_, i) => `-m multiport --dports ${spec.ports.slice(i * 15, i * 15 + 15).join(',')}`,
          );
    for (const match of ports) {
      for (const src of sources) {
        lines.push(`-A ${chain} -p tcp --syn ${src ? `-s ${src} ` : ''}${match} -j REDIRECT --to-ports ${spec.listenerPort}`);
      }
    }
    lines.push(`-I PREROUTING 1 -j ${chain}`, 'COMMIT', '');
    return lines.join('\n');
  };
  try {
    const done = await Promise.allSettled(families.map((f) => restore(spec.netns, f, text(f))));
    const failed = done.find((d): d is PromiseRejectedResult => d.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    await journal.revert(entry).catch(() => undefined);
    throw err;
  }
  let removed = false;
  let disarmed = false;
  const remove = async () => {
    if (removed) return;
    removed = true;
    // Both families at once, each in one transaction; else the journal's undo step by step.
    const done = await Promise.allSettled(
      families.map((f) => restore(spec.netns, f, `*nat\n-D PREROUTING -j ${chain}\n-F ${chain}\n-X ${chain}\nCOMMIT\n`)),
    );
    if (done.some((d) => d.status === 'rejected')) await journal.revert(entry);
    else journal.forget(entry);
  };
  return {
    async disarm() {
      if (disarmed || removed) return;
      disarmed = true;
      const done = await Promise.allSettled(
        families.map((f) => restore(spec.netns, f, `*nat\n-F ${chain}\n-A ${chain} -m conntrack --ctstate DNAT -j RETURN\nCOMMIT\n`)),
      );
      // A chain that cannot be emptied is deleted: nothing new may be redirected after revert.
      if (done.some((d) => d.status === 'rejected')) await remove();
    },
    remove,
  };
}

/** The nat chains of ours in a netns (for tests and status), a fault's (VC-H...) and the kept redirect rules (VC-S-P): IPv6 ones as `ip6:VC-...`. */
export async function redirectChainsIn(netns: string): Promise<string[]> {
  const out: string[] = [];
  for (const family of [4, 6] as const) {
    const { stdout } = await run('nsenter', [`--net=${netns}`, '--', iptablesOf(family), '-w', '5', '-t', 'nat', '-S']);
    for (const m of new Set([...stdout.matchAll(/^-N ((?:VC-H\d+|VC-S)-P)$/gm)].map((x) => x[1] as string))) {
      out.push(family === 6 ? `ip6:${m}` : m);
    }
  }
  return out;
}
