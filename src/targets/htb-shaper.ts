// A rate-limiting root qdisc on a device, shared by the bandwidth faults on
// it: the strictest rate is in force, the qdisc goes with the last fault.
// HTB with one class and a byte-limited fifo: HTB takes a GSO packet whole
// (tbf would cut it into segments and drop some, which TCP pays for with
// timeouts), and the fifo bounds the queue. The qdisc outlives our process,
// so it is journaled before it is made; the undo deletes only a root qdisc
// with OUR handle, never someone else's.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { OUR_QDISC_HANDLE, type Journal, type JournalEntry } from '../journal/journal.js';
import { keyedSerial } from './keyed-serial.js';

const run = promisify(execFile);

/** The handle of every root qdisc we add: how the undo (and a second process) tells ours. */
export const SHAPER_HANDLE = OUR_QDISC_HANDLE;
const CLASS = '7c5d:1';
const FIFO = '7c5e:';
/** `tc qdisc del` exit codes that mean "already gone": 1 no such device or netns, 2 no such qdisc. */
const GONE = [1, 2];

export interface ShapedDevice {
  /** Unique per device and namespace, e.g. "host:veth1a2b" or "/var/run/docker/netns/ab12:eth0". */
  key: string;
  /** The container whose device it is (its veth on the host, or its own interface). */
  containerId: string;
  /** Docker's bind mount of the container's network namespace (SandboxKey); null: the host's. */
  netns: string | null;
  dev: string;
  /** For errors and the journal, e.g. "veth1a2b (host side of api-1)". */
  label: string;
}

export interface QdiscCounters {
  bytes: number;
  packets: number;
  drops: number;
  overlimits: number;
}

interface Held {
  rates: Map<symbol, number>;
  entry: JournalEntry;
  applied: number;
}

const held = new Map<string, Held>();
/** One change at a time per device: two faults applied at once must not both add. */
const serialized = keyedSerial();

/** The class's rate (ceil = rate: it never borrows). Quantum is moot with one class. */
function classArgs(bytesPerSec: number): string[] {
  const bits = `${Math.round(bytesPerSec * 8)}bit`;
  return ['htb', 'rate', bits, 'ceil', bits, 'quantum', '65536'];
}

/** A queue of 100 ms at the rate, but room for two 64 KiB GSO packets at least. */
function fifoArgs(bytesPerSec: number): string[] {
  return ['bfifo', 'limit', String(Math.max(131072, Math.ceil(bytesPerSec * 0.1)))];
}

function prefixOf(d: ShapedDevice): string[] {
  return d.netns === null ? [] : ['nsenter', `--net=${d.netns}`, '--'];
}

async function tc(d: ShapedDevice, args: string[]): Promise<string> {
  const argv = [...prefixOf(d), 'tc', ...args];
  try {
    return (await run(argv[0] as string, argv.slice(1))).stdout;
  } catch (err) {
    const e = err as { stderr?: string; code?: number | string; path?: string };
    if (e.code === 'ENOENT') {
      throw new Error(`${e.path} is not installed on this host: network-bandwidth needs tc (iproute2) and nsenter (util-linux)`);
    }
    throw Object.assign(new Error(`${argv.join(' ')} failed (${e.code}): ${(e.stderr ?? '').trim()}`), { code: e.code });
  }
}

async function rootQdisc(d: ShapedDevice): Promise<{ kind: string; handle: string }> {
  const out = JSON.parse(await tc(d, ['-j', 'qdisc', 'show', 'dev', d.dev, 'root'])) as { kind: string; handle: string }[];
  return out[0] ?? { kind: 'none', handle: '0:' };
}

/** Limits the device's transmit rate; returns the release function (idempotent). */
export function shape(d: ShapedDevice, bytesPerSec: number, journal: Journal, description: string): Promise<() => Promise<void>> {
  return serialized(d.key, async () => {
    const token = Symbol(description);
    let h = held.get(d.key);
    if (!h) {
      const root = await rootQdisc(d);
      if (root.handle === SHAPER_HANDLE) throw new Error(`${d.label} is already shaped by another vitest-chaos process`);
      // Handle 0: is the kernel's default (noqueue on a veth): deleting ours brings it back.
      if (root.handle !== '0:') {
        throw new Error(`${d.label} has a ${root.kind} root qdisc that vitest-chaos did not add; it could not be restored`);
      }
      const entry = journal.record(description, [
        { type: 'tc-qdisc-del', containerId: d.containerId, netns: d.netns, device: d.dev, handle: SHAPER_HANDLE },
      ]);
      try {
        // Until the class exists, unclassified packets pass unshaped: never dropped.
        await tc(d, ['qdisc', 'add', 'dev', d.dev, 'root', 'handle', SHAPER_HANDLE, 'htb', 'default', '1']);
        await tc(d, ['class', 'add', 'dev', d.dev, 'parent', SHAPER_HANDLE, 'classid', CLASS, ...classArgs(bytesPerSec)]);
        await tc(d, ['qdisc', 'add', 'dev', d.dev, 'parent', CLASS, 'handle', FIFO, ...fifoArgs(bytesPerSec)]);
      } catch (err) {
        await journal.revert(entry).catch(() => undefined);
        throw err;
      }
      h = { rates: new Map([[token, bytesPerSec]]), entry, applied: bytesPerSec };
      held.set(d.key, h);
    } else {
      h.rates.set(token, bytesPerSec);
      try {
        await apply(d, h);
      } catch (err) {
        h.rates.delete(token);
        throw err;
      }
    }
    const mine = h;
    return () =>
      serialized(d.key, async () => {
        if (!mine.rates.delete(token)) return;
        if (mine.rates.size > 0) return apply(d, mine, true);
        held.delete(d.key);
        await journal.revert(mine.entry);
      });
  });
}

/** Puts the strictest held rate in force. */
async function apply(d: ShapedDevice, h: Held, tolerateGone = false): Promise<void> {
  const min = Math.min(...h.rates.values());
  if (min === h.applied) return;
  try {
    await tc(d, ['class', 'change', 'dev', d.dev, 'parent', SHAPER_HANDLE, 'classid', CLASS, ...classArgs(min)]);
    await tc(d, ['qdisc', 'change', 'dev', d.dev, 'parent', CLASS, 'handle', FIFO, ...fifoArgs(min)]);
    h.applied = min;
  } catch (err) {
    if (!(tolerateGone && GONE.includes((err as { code?: number }).code as number))) throw err;
  }
}

/** What went through our qdiscs (sent by the root, dropped by the fifo), or null when they are not there. */
export function qdiscCounters(d: ShapedDevice): QdiscCounters | null {
  try {
    const argv = [...prefixOf(d), 'tc', '-s', '-j', 'qdisc', 'show', 'dev', d.dev];
    const out = JSON.parse(execFileSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    const qs = out as ({ handle: string; root?: boolean } & QdiscCounters)[];
    const root = qs.find((q) => q.root && q.handle === SHAPER_HANDLE);
    const fifo = qs.find((q) => q.handle === FIFO);
    if (!root) return null;
    return { bytes: root.bytes, packets: root.packets, drops: (root.drops ?? 0) + (fifo?.drops ?? 0), overlimits: root.overlimits };
  } catch {
    return null;
  }
}
