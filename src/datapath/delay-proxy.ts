// The userspace data path for latency: this kernel has no netem and no fq, so
// connect4 redirects the target's connections here and we hold the bytes the
// target sends for latency +/- jitter before forwarding them to where the
// connection was going. Order is kept: a chunk never overtakes an earlier one.
import net from 'node:net';
import { once } from 'node:events';

export interface OriginalDestination {
  address: string;
  port: number;
}

export interface DelayProxyOptions {
  /** Address to listen on: the target's gateway, so only its network reaches us. */
  host: string;
  /** Finds where an accepted connection was going; null drops the connection. */
  lookup(clientAddress: string, clientPort: number): OriginalDestination | null;
  /** Delay for the next chunk the target sends, in ms. */
  delayMs(): number;
}

export interface DelayProxyStats {
  connections: number;
  unknownConnections: number;
  upstreamErrors: number;
  bytesUp: number;
  bytesDown: number;
  chunksDelayed: number;
}

export class DelayProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  readonly counters: DelayProxyStats = {
    connections: 0,
    unknownConnections: 0,
    upstreamErrors: 0,
    bytesUp: 0,
    bytesDown: 0,
    chunksDelayed: 0,
  };

  constructor(private readonly opts: DelayProxyOptions) {}

  async listen(): Promise<{ address: string; port: number }> {
    const server = net.createServer({ noDelay: true }, (c) => this.onConnection(c));
    this.server = server;
    server.listen(0, this.opts.host);
    await once(server, 'listening');
    const a = server.address() as net.AddressInfo;
    return { address: a.address, port: a.port };
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (server?.listening) await new Promise<void>((r) => server.close(() => r()));
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  private onConnection(client: net.Socket): void {
    this.track(client);
    const dst = this.opts.lookup(client.remoteAddress?.replace(/^::ffff:/, '') ?? '', client.remotePort ?? 0);
    if (!dst) {
      this.counters.unknownConnections++;
      client.destroy();
      return;
    }
    this.counters.connections++;
    const upstream = net.connect({ host: dst.address, port: dst.port, noDelay: true });
    this.track(upstream);
    let dueAt = 0; // when the last scheduled chunk goes out; later chunks never go earlier
    let pending = 0;
    let clientEnded = false;
    const flushEnd = () => {
      if (clientEnded && pending === 0) upstream.end();
    };
    client.on('data', (chunk: Buffer) => {
      this.counters.bytesUp += chunk.length;
      this.counters.chunksDelayed++;
      const now = performance.now();
      dueAt = Math.max(now + this.opts.delayMs(), dueAt);
      pending++;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        pending--;
        if (!upstream.destroyed && !upstream.write(chunk)) {
          client.pause();
          upstream.once('drain', () => client.resume());
        }
        flushEnd();
      }, Math.max(0, dueAt - now));
      this.timers.add(timer);
    });
    client.on('end', () => {
      clientEnded = true;
      flushEnd();
    });
    upstream.on('data', (chunk: Buffer) => {
      this.counters.bytesDown += chunk.length;
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });
    upstream.on('end', () => client.end());
    upstream.on('error', () => {
      this.counters.upstreamErrors++;
      client.destroy();
    });
    client.on('error', () => upstream.destroy());
    client.on('close', () => {
      if (pending === 0) upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
  }
}
