// The fake resolver the target's DNS queries are redirected to (bpf/dns.bpf.c),
// on UDP and TCP at the same port of the target's gateway. Queries for names
// the fault covers get its answer (SERVFAIL, NXDOMAIN, or none at all); every
// other query is passed, byte for byte, to the nameserver the target asked,
// from inside its network namespace (netns-forwarder.ts), and the reply comes
// back byte for byte. dns-packet reads the questions and writes our answers.
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import dnsPacket from 'dns-packet';

export type DnsAnswer = 'SERVFAIL' | 'NXDOMAIN' | 'drop';

/**
 * Bounds on what a target can make us hold: queries waiting for the real
 * nameserver (each answered or given up within the forwarder's 5 s), TCP
 * connections, queries in flight and unread replies per connection, and how
 * long a TCP connection may sit idle (RFC 7766 lets a server close it).
 */
export const DNS_LIMITS = { inflight: 256, tcpConnections: 64, tcpInflight: 16, tcpUnreadBytes: 256 * 1024, tcpIdleMs: 10_000 };

const RCODE: Record<Exclude<DnsAnswer, 'drop'>, number> = { SERVFAIL: 2, NXDOMAIN: 3 };

export interface DnsCounters {
  dnsQueries: number;
  dnsFaulted: number;
  dnsForwarded: number;
  dnsForwardFailed: number;
  dnsIgnored: number;
}

export interface FakeDnsOptions {
  /** Where to listen: the target's gateway. */
  host: string;
  /** The nameserver the target's queries were going to. */
  nameserver: { address: string; port: number };
  /** The target's addresses: queries from any other address are ignored. */
  clients: ReadonlySet<string>;
  /** The fault's answer for a query of this name, or null to pass it on. */
  answerFor(name: string): DnsAnswer | null;
  /** Asks the real nameserver; null when it did not answer. */
  forward(proto: 'udp' | 'tcp', query: Buffer): Promise<Buffer | null>;
  counters: DnsCounters;
}

export class FakeDns {
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private inflight = 0;

  constructor(private readonly opts: FakeDnsOptions) {}

  /** Listens on UDP and TCP at one port (the bpf rule has one redirect port for both). */
  async listen(): Promise<{ address: string; port: number }> {
    for (let attempt = 0; ; attempt++) {
      const tcp = net.createServer((s) => this.onTcp(s));
      tcp.maxConnections = DNS_LIMITS.tcpConnections;
      tcp.listen(0, this.opts.host);
      await once(tcp, 'listening');
      const port = (tcp.address() as net.AddressInfo).port;
      const udp = dgram.createSocket('udp4');
      try {
        udp.bind(port, this.opts.host);
        await once(udp, 'listening');
      } catch (err) {
        udp.close();
        tcp.close();
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 10) continue;
        throw err;
      }
      udp.on('message', (msg, rinfo) => void this.onUdp(udp, msg, rinfo));
      udp.on('error', () => {});
      this.udp = udp;
      this.tcp = tcp;
      return { address: this.opts.host, port };
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const { udp, tcp } = this;
    this.udp = this.tcp = undefined;
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
    if (tcp?.listening) await new Promise<void>((r) => tcp.close(() => r()));
  }

  private async onUdp(udp: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): Promise<void> {
    if (!this.opts.clients.has(rinfo.address)) {
      this.opts.counters.dnsIgnored++;
      return;
    }
    const reply = await this.answer('udp', msg);
    if (reply && this.udp === udp) udp.send(reply, rinfo.port, rinfo.address);
  }

  private onTcp(s: net.Socket): void {
    if (!this.opts.clients.has(s.remoteAddress?.replace(/^::ffff:/, '') ?? '')) {
      this.opts.counters.dnsIgnored++;
      s.destroy();
      return;
    }
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
    s.on('error', () => {});
    s.setTimeout(DNS_LIMITS.tcpIdleMs, () => s.destroy());
    let buf: Buffer = Buffer.alloc(0);
    let pending = 0;
    const drain = (): void => {
      // A peer that does not read its replies, or asks more than we carry at once, waits.
      while (!s.destroyed && pending < DNS_LIMITS.tcpInflight && buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const query = Buffer.from(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + query.length);
        pending++;
        void this.answer('tcp', query).then((reply) => {
          pending--;
          if (reply && !s.destroyed) {
            const len = Buffer.alloc(2);
            len.writeUInt16BE(reply.length);
            s.write(Buffer.concat([len, reply]));
            if (s.writableLength > DNS_LIMITS.tcpUnreadBytes) return void s.destroy();
          }
          drain();
          if (pending < DNS_LIMITS.tcpInflight && s.isPaused()) s.resume();
        });
      }
      if (pending >= DNS_LIMITS.tcpInflight) s.pause();
    };
    s.on('data', (d: Buffer) => {
      // At most one whole message (2 + 65535 bytes) is kept beyond what is being answered.
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      drain();
      if (buf.length > 2 + 0xffff + 0x10000) s.destroy();
    });
  }

  /** Never rejects: whatever the target sends, the worst it gets is no answer. */
  private async answer(proto: 'udp' | 'tcp', query: Buffer): Promise<Buffer | null> {
    if (this.inflight >= DNS_LIMITS.inflight) {
      this.opts.counters.dnsQueries++;
      this.opts.counters.dnsForwardFailed++;
      return null;
    }
    this.inflight++;
    try {
      return await this.decide(proto, query);
    } catch {
      return null;
    } finally {
      this.inflight--;
    }
  }

  private async decide(proto: 'udp' | 'tcp', query: Buffer): Promise<Buffer | null> {
    const c = this.opts.counters;
    c.dnsQueries++;
    let packet: dnsPacket.Packet | undefined;
    try {
      packet = dnsPacket.decode(query);
    } catch {
      // not ours to judge: the nameserver answers what it makes of it
    }
    const questions = Array.isArray(packet?.questions) ? packet.questions.filter((q) => typeof q?.name === 'string') : [];
    const fault = questions.map((q) => this.opts.answerFor(q.name)).find((a) => a !== null) ?? null;
    if (fault === null || !packet) {
      c.dnsForwarded++;
      const reply = await this.opts.forward(proto, query);
      if (!reply) c.dnsForwardFailed++;
      return reply;
    }
    c.dnsFaulted++;
    if (fault === 'drop') return null;
    return dnsPacket.encode({
      type: 'response',
      id: packet.id,
      flags: ((packet.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | RCODE[fault],
      questions: packet.questions,
    });
  }
}
