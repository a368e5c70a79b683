// The attributes fault kinds share, defined once with one default each: which
// packets or connections (direction, peer, port, protocol), what share
// (percent), and the units (milliseconds, bytes, signals, names). Each kind's
// schema spreads or picks these; its own fields live in its file.
import { z } from 'zod';
import { ChaosSpecError } from '../contracts/errors.js';
import { containerVeths } from '../targets/host-veth.js';
import type { ContainerRef, ResolvedTarget } from '../targets/resolve-target.js';
import type { TargetMode } from '../targets/choose-targets.js';
import type { FaultContext } from './fault-kind.js';
import { ANY_PEER, peerOfCidr, type PeerMatch } from '../kernel/peer-match.js';
import { signalNumber } from '../kernel/signals.js';
import { applyVethRules, type VethRuleSpec, type VethRuleStats } from '../kernel/veth-rules.js';
import type { AppliedFault } from '../contracts/applied-fault.js';
import type { Direction } from '../kernel/peer-match.js';

export const direction = z.enum(['egress', 'ingress', 'both'], { error: 'one of "egress", "ingress", "both"' }).default('both');

export type { Direction, Protocol } from '../kernel/peer-match.js';

function isCidr(s: string): boolean {
  return peerOfCidr(s) !== null;
}

const isContainerObject = (v: unknown): v is { getId(): string } =>
  typeof v === 'object' && v !== null && typeof (v as { getId?: unknown }).getId === 'function';

/** A container (object or "container:ID") or an IPv4 or IPv6 address / CIDR. */
export const peer = z.custom<ContainerRef>(
  (v) => isContainerObject(v) || (typeof v === 'string' && (isCidr(v) || /^container:[\w.-]+$/.test(v))),
  { error: 'a started container, "container:<id or name>", or an IPv4 or IPv6 address or CIDR such as "10.0.0.0/8" or "fd00::/64"' },
);

export const port = z
  .number({ error: 'an integer port from 1 to 65535' })
  .int({ error: 'an integer port from 1 to 65535' })
  .min(1, { error: 'an integer port from 1 to 65535' })
  .max(65535, { error: 'an integer port from 1 to 65535' });

/**
 * The share, 0-100, of what matches (packets, connections, requests, lookups,
 * calls) that gets the fault, drawn with the fault's seed; 100 hits every one
 * without a draw. One definition and one default (100) for every kind.
 */
export const percent = z
  .number({ error: 'a number from 0 to 100' })
  .min(0, { error: 'a number from 0 to 100' })
  .max(100, { error: 'a number from 0 to 100' })
  .default(100);

/** Only packets of this IP protocol. */
export const protocol = z.enum(['tcp', 'udp'], { error: 'one of "tcp", "udp"' });

const MAX_MS = 600_000;

/** Milliseconds, 0 to 600000 (10 minutes). */
export const millis = (what = `a number of milliseconds from 0 to ${MAX_MS}`) =>
  z.number({ error: what }).min(0, { error: what }).max(MAX_MS, { error: what });

/** A byte count, 0 to 2^31-1. */
export const byteCount = (what = 'an integer number of bytes from 0 to 2147483647') =>
  z.number({ error: what }).int({ error: what }).min(0, { error: what }).max(0x7fffffff, { error: what });

/** A host or DNS name pattern: letters, digits, '-', '_', '.', and '*' wildcards. */
export const namePattern = z
  .string({ error: 'a name or glob pattern such as "backend" or "*.svc.local"' })
  .regex(/^[A-Za-z0-9_*.-]{1,253}$/, { error: 'a name or glob pattern such as "backend" or "*.svc.local"' });

// Rates as tc(8) writes them -> bytes per second. A number is bytes per second.
// As in tc: "bit" units are bits per second, "bps" units are BYTES per second
// ("2mbps" is 2,000,000 bytes/s); k/m/g/t are powers of 1000, ki/mi/gi/ti of 1024.
const PREFIX: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3, ti: 1024 ** 4 };
const RATE = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(|k|m|g|t|ki|mi|gi|ti)(bit|bps)\s*$/i;

/** 1 kbit/s .. 100 gbit/s: below, a packet takes seconds; above, no veth carries it. */
export const MIN_RATE_BYTES = 125;
export const MAX_RATE_BYTES = 12.5e9;

export const RATE_EXPECTED =
  'a rate from 1kbit to 100gbit: bytes per second as a number (e.g. 125000), or a string with a tc unit ' +
  "such as '1mbit', '500kbit' (bits/s) or '2mbps' (BYTES/s)";

/** Bytes per second, or null when the input is not a rate in range. */
export function parseRate(input: unknown): number | null {
  let bytes: number;
  if (typeof input === 'number') {
    bytes = input;
  } else if (typeof input === 'string') {
    const m = RATE.exec(input);
    if (!m) return null;
    const value = Number(m[1]) * (PREFIX[(m[2] as string).toLowerCase()] as number);
    bytes = (m[3] as string).toLowerCase() === 'bit' ? value / 8 : value;
  } else {
    return null;
  }
  if (!Number.isFinite(bytes) || bytes < MIN_RATE_BYTES || bytes > MAX_RATE_BYTES) return null;
  return bytes;
}

/** A rate field: accepts a number or a tc-style string, parses to bytes per second. */
export const rate = z
  .custom<number | string>((v) => parseRate(v) !== null, { error: RATE_EXPECTED })
  .transform((v) => parseRate(v) as number);

/** "1.00 mbit/s (125000 B/s)" for messages and journal descriptions. */
export function formatRate(bytesPerSec: number): string {
  const bits = bytesPerSec * 8;
  const [v, u] = bits >= 1e9 ? [bits / 1e9, 'gbit'] : bits >= 1e6 ? [bits / 1e6, 'mbit'] : [bits / 1e3, 'kbit'];
  return `${v.toFixed(2)} ${u}/s (${Math.round(bytesPerSec)} B/s)`;
}

const SIGNAL = 'a signal name like "SIGKILL" or "SIGTERM", or a signal number from 1 to 64';

/** A signal: a name ('SIGKILL', 'SIGTERM'; the SIG prefix may be left out) or a number 1-64. Default 'SIGKILL'. */
export const signal = z
  .union([z.string(), z.number()], { error: SIGNAL })
  .refine((v) => signalNumber(v) !== undefined, { error: SIGNAL })
  .default('SIGKILL');

/** Seconds between the stop signal and SIGKILL, as `docker stop -t` (stop and restart). */
export const stopTimeoutSec = z
  .number({ error: 'an integer number of seconds from 0 to 3600' })
  .int({ error: 'an integer number of seconds from 0 to 3600' })
  .min(0, { error: 'an integer number of seconds from 0 to 3600' })
  .max(3600, { error: 'an integer number of seconds from 0 to 3600' });

/** Which packets a per-packet fault (loss, partition, corrupt, duplicate) applies to. */
export const packetScope = {
  /** `'egress'`: what the target sends; `'ingress'`: what it receives; `'both'`. Default `'both'`. */
  direction,
  /** Only packets to or from this peer: a container, `'container:<id or name>'`, or an IPv4 / IPv6 address or CIDR. Default: every peer. */
  peer: peer.optional(),
  /** Only packets with this source or destination port (1-65535). Default: every port. */
  port: port.optional(),
};

/** Which connections a data-path fault (latency, reset, timeout, slow-close, http) applies to. */
export const connectionScope = {
  /** Only connections to this peer: a container, `'container:<id or name>'`, or an IPv4 / IPv6 address or CIDR. Default: every peer. */
  peer: peer.optional(),
  /** Only connections to this destination port (1-65535). Default: every port. */
  port: port.optional(),
};

/**
 * Which of the target's TCP connections a connection-level fault applies to: those it
 * ACCEPTS (`'inbound'`: from the test process through a mapped port, from other
 * containers, from the host), those it OPENS (`'outbound'`), or both (`'all'`, default).
 * For inbound connections `peer` is the client's address and `port` the target's own port.
 */
export const connections = z.enum(['inbound', 'outbound', 'all'], { error: 'one of "inbound", "outbound", "all"' }).default('all');

export type Connections = z.output<typeof connections>;

/** The resolved `connectionScope` of a data-path fault: the peers' addresses and the port. */
export async function resolveConnectionScope(
  p: { peer?: ContainerRef; port?: number },
  ctx: FaultContext,
): Promise<{ peers: PeerMatch[]; port?: number }> {
  return { peers: await resolvePeer(p.peer, ctx), port: p.port };
}

/** The address matches a peer stands for: one per IPv4 and IPv6 address of a container, or the CIDR. */
export async function resolvePeer(p: ContainerRef | undefined, ctx: FaultContext): Promise<PeerMatch[]> {
  if (p === undefined) return [ANY_PEER];
  if (typeof p === 'string' && !p.startsWith('container:')) {
    const peer = peerOfCidr(p);
    if (!peer) throw new ChaosSpecError('peer', [{ field: 'peer', value: p, expected: 'an IPv4 or IPv6 address or CIDR' }]);
    return [peer];
  }
  const ref = typeof p === 'string' ? p.slice('container:'.length) : p;
  const t = await ctx.resolvePeer(ref);
  const peers = t.networks.flatMap((n) =>
    [n.ipv4, n.ipv6].filter((ip): ip is string => !!ip).map((ip) => peerOfCidr(ip, `${t.name}(${ip})`) as PeerMatch),
  );
  if (peers.length === 0) throw new Error(`peer container ${t.name} has no IP address`);
  return peers;
}

export const packetFault = { percent, direction, peer: peer.optional(), port: port.optional() };

/** The ifindexes of the target's host-side veths, or a ChaosSpecError naming the target. */
export function hostVethsOf(kind: string, target: ResolvedTarget): number[] {
  const refuse = (why: string): never => {
    throw new ChaosSpecError(`chaos.inject(${kind})`, [
      { field: 'target', value: target.name, expected: `a container on a bridge network (${why})` },
    ]);
  };
  let veths: ReturnType<typeof containerVeths> = [];
  try {
    veths = containerVeths(target.pid, target.name);
  } catch (err) {
    refuse((err as Error).message);
  }
  if (veths.length === 0) refuse('it has no veth with a peer on the host');
  return veths.map((v) => v.hostIfindex);
}

/**
 * apply() of a kind acting on the target's packets on its host-side veths (network-corrupt,
 * network-duplicate): its veths, its peers, port, direction and percent. Each kind names the
 * counters' `hit` after its action.
 */
export async function applyVethAction(
  kind: string,
  action: VethRuleSpec['action'],
  p: { direction: Direction; peer?: ContainerRef; port?: number; percent: number },
  target: ResolvedTarget,
  ctx: FaultContext,
): Promise<AppliedFault<VethRuleStats>> {
  return applyVethRules(ctx.kernel, hostVethsOf(kind, target), ctx.seed, {
    action,
    direction: p.direction,
    peers: await resolvePeer(p.peer, ctx),
    port: p.port,
    percent: p.percent,
  });
}

/** The attributes every fault spec has besides `kind` and the kind's own parameters. */
export interface CommonFields {
  /**
   * The container to inject into: a StartedTestContainer, or the id or name of
   * a container this run started (others only with `allowTargets` / `chaos.allow()`).
   * An array lists candidates; `mode` chooses which of them get the fault.
   */
  target: ContainerRef | readonly ContainerRef[];
  /**
   * Which candidates of `target` get the fault, chosen with the fault's seed (Chaos
   * Mesh's selector modes): `'one'`, `'all'` (default), `'fixed'` (`value` targets),
   * `'fixed-percent'` (`value` percent of them, rounded down, at least one),
   * `'random-max-percent'` (a seeded draw of 0 to `value` percent, at least one).
   */
  mode?: TargetMode;
  /** The count for `mode: 'fixed'` (integer >= 1), the percent (0 < value <= 100) for the percent modes. */
  value?: number;
  /**
   * Seed of the fault's random choices, an integer 0 to 2^31-1. Default: derived
   * from the run's seed, the test's name and the fault's position in the test.
   */
  seed?: number;
}
