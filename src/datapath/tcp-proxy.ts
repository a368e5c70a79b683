// The userspace data path: this kernel has no netem and no fq, so connect4
// redirects the target's connections to a listener here (on the target's
// gateway), we find where each was going and relay it. What happens to the
// bytes and to the closes on the way is the fault's policy, as RelayHooks per
// connection (latency, resets, stalls, slow closes, HTTP faults); accepting,
// the lookup, backpressure, half-closes, timers, the hand-back on revert
// (release: the listeners close, each relay's policy lets go of what it holds
// and the relay carries on as a plain one until either side closes) and the
// teardown are this one core.
import net from 'node:net';
import { once } from 'node:events';
import { readHop, type Route } from './proxy-chain.js';
import type { CarriedConnection } from './proxy-registry.js';

export type { Route };

export interface OriginalDestination {
  address: string;
  port: number;
}

/** 'up': what the target sends; 'down': what comes back to it. */
export type Way = 'up' | 'down';

export interface ProxyCounters {
  connections: number;
  unknownConnections: number;
  upstreamErrors: number;
  bytesUp: number;
  bytesDown: number;
}

/** One redirected connection: the target's socket and ours to the original destination. */
export interface Relay {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  readonly dst: OriginalDestination;
  /** Another socket towards dst on the same route (a policy's own upstream connections); closed with the proxy. */
  connect(): net.Socket;
  /** Bytes forwarded so far, each way. */
  readonly carried: Record<Way, number>;
  /**
   * Passes a chunk on (with backpressure on the side it came from); sent()
   * runs once the chunk is handed to the kernel.
   */
  forward(way: Way, chunk: Buffer, sent?: () => void): void;
  /** Passes the end of one way on (a FIN), once. */
  forwardEnd(way: Way): void;
  /** Resets both sockets: the target and the destination see an RST. */
  reset(): void;
  /** Closes both sockets gracefully (FIN); what the policy held back is never sent. */
  close(): void;
  /** Runs fn after ms unless the relay or the proxy is gone, or the relay released, by then. */
  after(ms: number, fn: () => void): void;
  /** Stops relaying: the policy owns both sockets from now on (still closed on revert). */
  detach(): void;
  readonly closed: boolean;
  /** The fault was reverted: the relay passes everything on as it is from now on. */
  readonly released: boolean;
}

/** Per-connection behaviour. Absent hooks forward as they are. */
export interface RelayHooks {
  data?(way: Way, chunk: Buffer): void;
  end?(way: Way): void;
  /**
   * The fault is reverted: pass on at once what the policy holds (relay.forward,
   * forwardEnd) and resume what it paused. The relay's timers are already
   * cleared; from now on data and ends bypass the hooks.
   */
  release?(): void;
}

export interface TcpProxyOptions {
  /** Address to listen on: the target's gateway, so only its network reaches us. */
  host: string;
  /** The target's IPv6 gateway, when its network has IPv6: redirected IPv6 connections arrive there, on the same port. */
  host6?: string;
  /** Where an accepted connection goes; null drops the connection. */
  lookup(clientAddress: string, clientPort: number, client: net.Socket): Route | null | Promise<Route | null>;
  /** The policy: hooks for a new relay (may set timers with relay.after). */
  open(relay: Relay): RelayHooks;
  /** Listen on this already-listening socket instead (a listener in a target's netns); no hop listener then. */
  listenFd?: number;
}

/** Proxies released but still carrying connections (closeReleasedProxies ends them). */
const releasedProxies = new Set<TcpProxy>();

/**
 * Ends the connections that proxies of reverted faults still carry (the end of
 * a test file): nothing of ours outlives the tests that made it.
 */
export async function closeReleasedProxies(): Promise<void> {
  await Promise.all([...releasedProxies].map((p) => p.close()));
}

/** How many reverted faults' proxies still carry connections (for tests). */
export function releasedProxyCount(): number {
  return releasedProxies.size;
}

export class TcpProxy {
  private server?: net.Server;
  private hopServer?: net.Server;
  private server6?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly relays = new Set<() => void>();
  /** The relays of connections the target opened (not hops), by its socket: for carried(). */
  private readonly fromTarget = new Map<net.Socket, CarriedConnection>();
  private released = false;
  private closedHard = false;
  private listenersOpen = true;
  private resolveFinished!: () => void;
  /** Resolves once the proxy is released (or closed) and its last connection has ended. */
  readonly finished: Promise<void> = new Promise((r) => {
    this.resolveFinished = r;
  });
  readonly counters: ProxyCounters = {
    connections: 0,
    unknownConnections: 0,
    upstreamErrors: 0,
    bytesUp: 0,
    bytesDown: 0,
  };

  constructor(private readonly opts: TcpProxyOptions) {}

  /**
   * Listens for the target's redirected connections (address, port) and for
   * hops from other faults' proxies stacked on the same connections (hopPort).
   */
  async listen(): Promise<{ address: string; port: number; hopPort: number; address6?: string }> {
    // Half-open: a FIN from one side is passed on as a FIN, not answered by us.
    const onConnection = (c: net.Socket) => {
      const address = c.remoteAddress?.replace(/^::ffff:/, '') ?? '';
      this.accept(c, () => this.opts.lookup(address, c.remotePort ?? 0, c), address);
    };
    const server = net.createServer({ noDelay: true, allowHalfOpen: true }, onConnection);
    const hopServer = net.createServer({ noDelay: true, allowHalfOpen: true }, (c) => {
      this.accept(c, () => readHop(c));
    });
    this.server = server;
    if (this.opts.listenFd !== undefined) {
      server.listen({ fd: this.opts.listenFd });
      await once(server, 'listening');
      const a = server.address() as net.AddressInfo;
      return { address: a.address, port: a.port, hopPort: 0 };
    }
    this.hopServer = hopServer;
    server.listen(0, this.opts.host);
    hopServer.listen(0, this.opts.host);
    await Promise.all([once(server, 'listening'), once(hopServer, 'listening')]);
    const a = server.address() as net.AddressInfo;
    const address6 = this.opts.host6 ? await this.listen6(this.opts.host6, a.port, onConnection) : undefined;
    return { address: a.address, port: a.port, hopPort: (hopServer.address() as net.AddressInfo).port, ...(address6 ? { address6 } : {}) };
  }

  /**
   * The IPv6 listener, on the IPv4 listener's port (the connect rule holds one
   * port). When that port is taken there, IPv6 connections are not redirected,
   * and the fault's counters show it.
   */
  private async listen6(host6: string, port: number, onConnection: (c: net.Socket) => void): Promise<string | undefined> {
    const server6 = net.createServer({ noDelay: true, allowHalfOpen: true }, onConnection);
    const ok = await new Promise<boolean>((resolve) => {
      server6.once('error', () => resolve(false));
      server6.listen({ port, host: host6, ipv6Only: true }, () => resolve(true));
    });
    if (!ok) return undefined;
    this.server6 = server6;
    return (server6.address() as net.AddressInfo).address;
  }

  /** Destroys every connection and closes the listeners: the teardown (inject failed, end of the file). */
  async close(): Promise<void> {
    this.closedHard = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.relays.clear();
    await this.closeListeners();
    this.checkFinished();
  }

  /**
   * The fault is reverted (its redirect already gone): the connections it
   * carries are handed back unbroken. Each relay's policy passes on what it
   * holds and the relay goes on as a plain one until either side closes it.
   * The listeners close after the event loop's next poll phase (connections
   * the kernel redirected before the rules went, already in the accept queue,
   * are taken first, not reset with it: measured, one setImmediate was not
   * enough); resolves then. `finished` resolves when the
   * last connection has ended.
   */
  async release(): Promise<void> {
    if (this.released || this.closedHard) return;
    this.released = true;
    releasedProxies.add(this);
    for (const r of [...this.relays]) r();
    this.relays.clear();
    // A connection the kernel accepted for us just before (its SYN redirected before the revert) is
    // taken first: the second check phase from here comes after a poll phase (accept) that began
    // after this point. (A 0 ms timer would cost a millisecond.)
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    await this.closeListeners();
    this.checkFinished();
  }

  /** No connection carried (accepted, relayed or opened by the policy). */
  get idle(): boolean {
    return this.sockets.size === 0;
  }

  /** Stops listening now; connections already accepted are not waited for. */
  private async closeListeners(): Promise<void> {
    const servers = [this.server, this.hopServer, this.server6];
    this.server = this.hopServer = this.server6 = undefined;
    for (const server of servers) if (server?.listening) server.close();
    this.listenersOpen = false;
  }

  private checkFinished(): void {
    if ((this.released || this.closedHard) && !this.listenersOpen && this.sockets.size === 0) {
      releasedProxies.delete(this);
      this.resolveFinished();
    }
  }

  /** Sockets a policy opens itself are closed with the proxy too. */
  track(s: net.Socket): void {
    if (this.closedHard) {
      s.destroy();
      return;
    }
    this.sockets.add(s);
    s.once('close', () => {
      this.sockets.delete(s);
      this.checkFinished();
    });
  }

  /** A timer cleared when the proxy closes. */
  after(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        fn();
      },
      Math.max(0, ms),
    );
    this.timers.add(t);
    return t;
  }

  clearTimer(t: NodeJS.Timeout): void {
    clearTimeout(t);
    this.timers.delete(t);
  }

  /** `target`: the client's address when the target connected (not a hop from another proxy). */
  private accept(client: net.Socket, lookup: () => Route | null | Promise<Route | null>, target?: string): void {
    this.onConnection(client, lookup, target).catch(() => client.destroy());
  }

  /** The connections the target opened that this proxy carries now (handed back ones too), and where each was going. */
  carried(): CarriedConnection[] {
    return [...this.fromTarget.values()];
  }

  private async onConnection(client: net.Socket, lookup: () => Route | null | Promise<Route | null>, target?: string): Promise<void> {
    this.track(client);
    client.on('error', () => {});
    // Nothing is relayed before the route is known: the client's bytes wait in its socket.
    const route = await lookup();
    if (!route || client.destroyed || this.closedHard) {
      if (!route) this.counters.unknownConnections++;
      client.destroy();
      return;
    }
    this.counters.connections++;
    let upstream: net.Socket;
    try {
      upstream = route.connect({ allowHalfOpen: true });
    } catch {
      this.counters.upstreamErrors++;
      client.resetAndDestroy();
      return;
    }
    this.track(upstream);
    upstream.on('error', () => this.counters.upstreamErrors++);
    if (target && client.remotePort) {
      this.fromTarget.set(client, { client: target, clientPort: client.remotePort, dst: route.dst });
      client.once('close', () => this.fromTarget.delete(client));
    }
    this.relay(client, upstream, route);
    client.resume(); // a hop's header was read in paused mode
  }

  private relay(client: net.Socket, upstream: net.Socket, route: Route): void {
    const dst = route.dst;
    const core = this;
    const counters = this.counters;
    const timers = new Set<NodeJS.Timeout>();
    const ended: Record<Way, boolean> = { up: false, down: false };
    // One drain listener per way at a time (a listener per chunk piled up: MaxListenersExceededWarning).
    const draining: Record<Way, boolean> = { up: false, down: false };
    let attached = true;
    let released = false;
    const toOf = (way: Way) => (way === 'up' ? upstream : client);
    const fromOf = (way: Way) => (way === 'up' ? client : upstream);
    const relay: Relay = {
      client,
      upstream,
      dst,
      connect() {
        const s = route.connect({ allowHalfOpen: false });
        core.track(s);
        return s;
      },
      carried: { up: 0, down: 0 },
      get closed() {
        return client.destroyed && upstream.destroyed;
      },
      get released() {
        return released;
      },
      forward(way, chunk, sent) {
        const to = toOf(way);
        if (to.destroyed || to.writableEnded) return;
        relay.carried[way] += chunk.length;
        if (way === 'up') counters.bytesUp += chunk.length;
        else counters.bytesDown += chunk.length;
        if (!to.write(chunk, sent && (() => sent())) && !draining[way]) {
          const from = fromOf(way);
          draining[way] = true;
          from.pause();
          to.once('drain', () => {
            draining[way] = false;
            from.resume();
          });
        }
      },
      forwardEnd(way) {
        if (ended[way]) return;
        ended[way] = true;
        const to = toOf(way);
        if (!to.destroyed) to.end();
      },
      reset() {
        for (const s of [client, upstream]) if (!s.destroyed) s.resetAndDestroy();
      },
      close() {
        for (const s of [client, upstream]) s.end(() => s.destroy());
      },
      after(ms, fn) {
        if (released) return;
        const t = core.after(ms, () => {
          timers.delete(t);
          if (!relay.closed) fn();
        });
        timers.add(t);
      },
      detach() {
        attached = false;
        for (const s of [client, upstream]) {
          s.removeListener('data', onUp).removeListener('data', onDown);
          s.removeListener('end', onUpEnd).removeListener('end', onDownEnd);
        }
      },
    };
    let hooks: RelayHooks = {};
    const onUp = (c: Buffer) => (hooks.data ? hooks.data('up', c) : relay.forward('up', c));
    const onDown = (c: Buffer) => (hooks.data ? hooks.data('down', c) : relay.forward('down', c));
    const onUpEnd = () => (hooks.end ? hooks.end('up') : relay.forwardEnd('up'));
    const onDownEnd = () => (hooks.end ? hooks.end('down') : relay.forwardEnd('down'));
    client.on('data', onUp).on('end', onUpEnd);
    upstream.on('data', onDown).on('end', onDownEnd);
    // A reset or error on one side is passed on as a reset of the other, as on the wire.
    const fail = (other: net.Socket) => (hadError: boolean) => {
      if (hadError && attached && !other.destroyed) other.resetAndDestroy();
    };
    client.on('close', fail(upstream));
    upstream.on('close', fail(client));
    const clearTimers = () => {
      for (const t of timers) this.clearTimer(t);
      timers.clear();
    };
    // Revert: the policy lets go (what it holds goes on), then the relay is a plain one.
    const release = () => {
      if (released) return;
      released = true;
      clearTimers();
      const h = hooks;
      hooks = {};
      h.release?.();
    };
    const cleanup = () => {
      if (!relay.closed) return;
      clearTimers();
      this.relays.delete(release);
    };
    client.on('close', cleanup);
    upstream.on('close', cleanup);
    hooks = this.opts.open(relay);
    if (this.released) release();
    else if (!relay.closed) this.relays.add(release);
  }
}
