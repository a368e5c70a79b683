// Stacked data-path faults. When the connect4 rules of several faults match one
// connection, the kernel sends it to the proxy of the lowest (rank, slot) and
// records every matching slot; that proxy relays to the next one instead of the
// destination, and so on, so that every fault's policy is in force on the
// connection: latency and the other stream faults nearest the target, HTTP
// faults nearest the destination, as on a real path.
// A hop between two of our proxies goes to the next proxy's hop listener and
// starts with one header line naming the original destination and the hops
// after it. In-band, because the receiving side cannot rely on the hop's
// source address (a host may rewrite it) nor on the order of accept and connect.
import { randomBytes } from 'node:crypto';
import net from 'node:net';

export interface Hop {
  address: string;
  port: number;
}

/** Where an accepted connection goes: its original destination, reached directly or through further proxies. */
export interface Route {
  /** Where the target was connecting (what the policy sees as relay.dst). */
  readonly dst: Hop;
  /** Proxies of other faults still on the way to dst. */
  readonly hops: number;
  /** Opens a socket towards dst (through the next proxy when faults are stacked). */
  connect(opts: { allowHalfOpen: boolean }): net.Socket;
}

export interface ChainMember {
  cgroupId: bigint;
  slot: number;
  /** Lower ranks are nearer the target (the kernel's rule rank, the same order). */
  rank: number;
  /** The member proxy's hop listener. */
  hop: Hop;
}

const members = new Map<string, ChainMember>();
const memberKey = (cgroupId: bigint, slot: number) => `${cgroupId}/${slot}`;
/** Hop listeners of faults in force (a member per slot: counted). A reverted fault's proxy is skipped by new hops. */
const liveHops = new Map<string, number>();
const hopKey = (h: Hop) => `${h.address}:${h.port}`;
/** Only this process's proxies send hop headers; anything else on a hop listener is dropped. */
const TOKEN = randomBytes(12).toString('hex');
const MAX_HEADER = 1024;

/** Makes a proxy a later hop of the connections its slot matched; returns the leave function. */
export function joinChain(m: ChainMember): () => void {
  const key = memberKey(m.cgroupId, m.slot);
  members.set(key, m);
  liveHops.set(hopKey(m.hop), (liveHops.get(hopKey(m.hop)) ?? 0) + 1);
  let left = false;
  return () => {
    if (left) return;
    left = true;
    if (members.get(key) === m) members.delete(key);
    const n = (liveHops.get(hopKey(m.hop)) ?? 1) - 1;
    if (n > 0) liveHops.set(hopKey(m.hop), n);
    else liveHops.delete(hopKey(m.hop));
  };
}

/** The hops a connection passes after the proxy of `head`, nearest the target first. */
export function chainAfter(cgroupId: bigint, slots: readonly number[], head: number): Hop[] {
  const first = members.get(memberKey(cgroupId, head));
  const seen = new Set<string>(first ? [`${first.hop.address}:${first.hop.port}`] : []);
  const rest: Hop[] = [];
  const found = slots
    .filter((s) => s !== head)
    .map((s) => members.get(memberKey(cgroupId, s)))
    .filter((m): m is ChainMember => m !== undefined)
    .sort((a, b) => a.rank - b.rank || a.slot - b.slot);
  for (const m of found) {
    // One fault holding two matching slots (overlapping peers) is passed once.
    const k = `${m.hop.address}:${m.hop.port}`;
    if (seen.has(k)) continue;
    seen.add(k);
    rest.push(m.hop);
  }
  return rest;
}

/**
 * Where a relay's upstream sockets go: the destination, or the next proxy of the chain.
 * A socket opened later (an HTTP relay's new upstream connection) skips the proxies of
 * faults reverted since: their effect is over, and their listeners are closing.
 */
export function routeThrough(dst: Hop, rest: readonly Hop[]): Route {
  return {
    dst,
    hops: rest.length,
    connect({ allowHalfOpen }) {
      const [next, ...after] = rest.filter((h) => liveHops.has(hopKey(h)));
      if (!next) return net.connect({ host: dst.address, port: dst.port, noDelay: true, allowHalfOpen });
      const s = net.connect({ host: next.address, port: next.port, noDelay: true, allowHalfOpen });
      const hops = after.map((h) => `${h.address}:${h.port}`).join(',');
      s.write(`${TOKEN} ${dst.address}:${dst.port} ${hops}\n`);
      return s;
    },
  };
}

/**
 * Reads the header of a hop from another of our proxies; the bytes after it stay
 * in the socket for the relay. Null for anything that is not one of our hops.
 */
export function readHop(s: net.Socket, timeoutMs = 5000): Promise<Route | null> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (route: Route | null, rest?: Buffer) => {
      clearTimeout(timer);
      s.removeListener('data', onData);
      s.removeListener('close', onClose);
      s.pause();
      if (rest?.length) s.unshift(rest);
      resolve(route);
    };
    const onClose = () => done(null);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(10);
      if (nl < 0) {
        if (buf.length > MAX_HEADER) done(null);
        return;
      }
      done(parseHeader(buf.toString('latin1', 0, nl)), buf.subarray(nl + 1));
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    s.on('data', onData);
    s.once('close', onClose);
  });
}

function parseHeader(line: string): Route | null {
  const [token, dst, hops = ''] = line.split(' ');
  if (token !== TOKEN || !dst) return null;
  const hop = (s: string): Hop | null => {
    const i = s.lastIndexOf(':');
    const port = Number(s.slice(i + 1));
    return i > 0 && Number.isInteger(port) && port > 0 && port < 65536 ? { address: s.slice(0, i), port } : null;
  };
  const d = hop(dst);
  const rest = hops ? hops.split(',').map(hop) : [];
  if (!d || rest.some((h) => h === null)) return null;
  return routeThrough(d, rest as Hop[]);
}
