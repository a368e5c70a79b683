// iptables rules in a container's network namespace that queue its packets to
// an NFQUEUE reader of ours (src/kernel/packet-queue.ts). One chain per queue
// and hook (VC-Q<queue>-O, jumped to from OUTPUT: what the target sends;
// VC-Q<queue>-I from INPUT: what it receives), journaled before they are made
// (the reaper deletes them if we die) and deleted whole on revert. The rules
// pass packets on when no reader is bound (--queue-bypass), so between our
// death and the reaper the target only loses the fault.
import Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { promisify } from 'node:util';
import { deleteQueueChain } from '../journal/undo.js';
import type { Journal } from '../journal/journal.js';

const run = promisify(execFile);

export interface QueueRuleSpec {
  containerId: string;
  /** Docker's bind mount of the container's netns (SandboxKey). */
  netns: string;
  queue: number;
  /** iptables match arguments, one array per rule, for what the target sends (OUTPUT) and receives (INPUT). */
  output: readonly (readonly string[])[];
  input: readonly (readonly string[])[];
  description: string;
}

/** The container's netns as Docker names it (SandboxKey), checked to be pid's; null if it is not. */
export async function sandboxOf(docker: Docker, containerId: string, pid: number): Promise<string | null> {
  const info = await docker.getContainer(containerId).inspect();
  const netns = info.NetworkSettings?.SandboxKey ?? '';
  try {
    return netns !== '' && statSync(netns).ino === statSync(`/proc/${pid}/ns/net`).ino ? netns : null;
  } catch {
    return null;
  }
}

/** Installs the rules; returns the remover (idempotent). */
export async function installQueueRules(spec: QueueRuleSpec, journal: Journal): Promise<() => Promise<void>> {
  const chains = (
    [
      ['O', 'OUTPUT', spec.output],
      ['I', 'INPUT', spec.input],
    ] as const
  ).filter(([, , rules]) => rules.length > 0);
  const name = (s: string) => `VC-Q${spec.queue}-${s}`;
  const entry = journal.record(
    spec.description,
    chains.map(([s]) => ({ type: 'iptables-chain-del' as const, containerId: spec.containerId, netns: spec.netns, chain: name(s) })),
  );
  const lines = ['*mangle'];
  for (const [s] of chains) lines.push(`:${name(s)} - [0:0]`);
  for (const [s, , rules] of chains) {
    for (const r of rules) {
      // A rule with its own target (RETURN) keeps it; the others queue.
      const target = r.includes('-j') ? '' : ` -j NFQUEUE --queue-num ${spec.queue} --queue-bypass`;
      lines.push(`-A ${name(s)} ${r.join(' ')}${target}`);
    }
  }
  for (const [s, hook] of chains) lines.push(`-I ${hook} 1 -j ${name(s)}`);
  lines.push('COMMIT', '');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = execFile('nsenter', [`--net=${spec.netns}`, '--', 'iptables-restore', '-w', '5', '--noflush'], (err, _out, stderr) =>
        err ? reject(new Error(`iptables-restore in ${spec.netns} failed: ${String(stderr).trim() || err.message}`)) : resolve(),
      );
      child.stdin?.end(lines.join('\n'));
    });
  } catch (err) {
    await journal.revert(entry).catch(() => undefined);
    throw err;
  }
  let removed = false;
  return async () => {
    if (removed) return;
    removed = true;
    await journal.revert(entry);
  };
}

/** The chains of ours in a netns (for tests and status). */
export async function queueChainsIn(netns: string): Promise<string[]> {
  const { stdout } = await run('nsenter', [`--net=${netns}`, '--', 'iptables', '-w', '5', '-t', 'mangle', '-S']);
  return [...new Set([...stdout.matchAll(/^-N (VC-Q\d+-[OI])$/gm)].map((m) => m[1] as string))];
}

export { deleteQueueChain };
