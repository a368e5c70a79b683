// Installs cgroup/connect4 rules (one slot per peer address): reject a
// connection at once, or redirect it to a local proxy.
import type { ContainerRef, ResolvedTarget } from '../targets/resolve-target.js';
import type { SlotRef } from '../kernel/slotted-programs.js';
import { ipv4ToInt } from '../kernel/kernel.js';
import type { AppliedFault, FaultContext, FaultStats } from './fault-kind.js';
import { resolvePeer } from './network-scope.js';

export interface ConnectRuleSpec {
  action: 'reject' | 'redirect';
  peer?: ContainerRef;
  port?: number;
  redirectTo?: { address: string; port: number };
  tcpOnly: boolean;
}

export interface AppliedConnectRules extends AppliedFault {
  refs: readonly SlotRef[];
}

export async function applyConnectRules(
  target: ResolvedTarget,
  ctx: FaultContext,
  spec: ConnectRuleSpec,
): Promise<AppliedConnectRules> {
  const peers = await resolvePeer(spec.peer, ctx);
  const cp = ctx.kernel.connect;
  const action = ctx.kernel.constant(spec.action === 'reject' ? 'VC_CONN_REJECT' : 'VC_CONN_REDIRECT');
  const refs: SlotRef[] = [];
  const final = new Map<SlotRef, FaultStats>();
  try {
    for (const p of peers) {
      const ref = cp.acquire(target.cgroup.directory, target.cgroup.id);
      refs.push(ref);
      cp.enable(ref, {
        action,
        peer_addr: p.addr,
        peer_mask: p.mask,
        port: spec.port ?? 0,
        redirect_addr: spec.redirectTo ? ipv4ToInt(spec.redirectTo.address) : 0,
        redirect_port: spec.redirectTo?.port ?? 0,
        tcp_only: spec.tcpOnly ? 1 : 0,
      });
    }
  } catch (err) {
    for (const r of refs) cp.release(r);
    throw err;
  }
  const toStats = (s: { matched: bigint; rejected: bigint; redirected: bigint } | null): FaultStats =>
    s ? { connectsMatched: Number(s.matched), connectsRejected: Number(s.rejected), connectsRedirected: Number(s.redirected) } : {};
  return {
    refs,
    stats() {
      const sum: FaultStats = { connectsMatched: 0, connectsRejected: 0, connectsRedirected: 0 };
      for (const r of refs) {
        const s = final.get(r) ?? toStats(cp.readStats(r));
        for (const key of Object.keys(sum)) sum[key] = (sum[key] ?? 0) + (s[key] ?? 0);
      }
      return sum;
    },
    revert() {
      for (const r of refs) {
        const last = cp.release(r);
        if (last) final.set(r, toStats(last));
      }
    },
  };
}
