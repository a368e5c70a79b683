// Asks the target's own nameserver on our behalf. Docker's embedded resolver
// (127.0.0.11) only exists inside the container's network namespace, so the
// names our fake resolver does not fail are passed to a small Node process we
// start in that namespace only (`nsenter -n`: it stays in our cgroup, so none
// of the target's faults apply to it, and no file of the container is used).
// It speaks to us over its stdin/stdout and exits when its stdin closes, i.e.
// with our process; it is journaled all the same.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Journal, JournalEntry } from '../journal/journal.js';
import { OWN_PROCESS_MARK, processStartTicks } from '../journal/journal.js';

/** Requests: tag u32, proto u8 (0 udp, 1 tcp), nameserver IPv4 (4), port u16, length u16, query. */
const HEADER = 13;
/** Replies: tag u32, length u16 (0: no answer), reply. */
const REPLY_HEADER = 6;
const TIMEOUT_MS = 5000;

const SCRIPT = `${OWN_PROCESS_MARK}'use strict';
const dgram = require('node:dgram');
const net = require('node:net');
const NONE = Buffer.alloc(0);
const reply = (tag, msg) => {
  const h = Buffer.alloc(${REPLY_HEADER});
  h.writeUInt32BE(tag, 0);
  h.writeUInt16BE(msg.length, 4);
  process.stdout.write(Buffer.concat([h, msg]));
};
function ask(tag, tcp, host, port, q) {
  let done = false, acc = NONE, s;
  const finish = (m) => { if (done) return; done = true; clearTimeout(t); tcp ? s.destroy() : s.close(); reply(tag, m); };
  const t = setTimeout(() => finish(NONE), ${TIMEOUT_MS});
  if (tcp) {
    s = net.connect(port, host);
    s.on('data', (d) => {
      acc = Buffer.concat([acc, d]);
      if (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) finish(acc.subarray(2, 2 + acc.readUInt16BE(0)));
    });
    s.on('end', () => finish(NONE));
    const l = Buffer.alloc(2);
    l.writeUInt16BE(q.length);
    s.write(Buffer.concat([l, q]));
  } else {
    s = dgram.createSocket('udp4');
    s.on('message', (m) => finish(m));
    s.connect(port, host, () => s.send(q));
  }
  s.on('error', () => finish(NONE));
}
let buf = NONE;
process.stdin.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  while (buf.length >= ${HEADER} && buf.length >= ${HEADER} + buf.readUInt16BE(11)) {
    const len = buf.readUInt16BE(11);
    const host = [buf[5], buf[6], buf[7], buf[8]].join('.');
    ask(buf.readUInt32BE(0), buf[4] === 1, host, buf.readUInt16BE(9), Buffer.from(buf.subarray(${HEADER}, ${HEADER} + len)));
    buf = buf.subarray(${HEADER} + len);
  }
});
process.stdin.on('end', () => process.exit(0));
process.stdout.on('error', () => process.exit(0));
`;

export class NetnsForwarder {
  private readonly pending = new Map<number, (reply: Buffer | null) => void>();
  private nextTag = 1;
  private buf = Buffer.alloc(0);
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    private readonly journal: Journal,
    private readonly entry: JournalEntry,
  ) {
    child.stdout!.on('data', (d: Buffer) => this.onData(d));
    child.stdin!.on('error', () => {});
    child.once('exit', () => {
      this.exited = true;
      for (const done of this.pending.values()) done(null);
      this.pending.clear();
    });
  }

  /** Starts the forwarder in the network namespace of `pid`, journaled before it exists. */
  static async start(pid: number, journal: Journal, description: string): Promise<NetnsForwarder> {
    const entry = journal.record(description, []);
    let child: ChildProcess;
    try {
      const env = { ...process.env };
      delete env.NODE_OPTIONS; // a test runner's loaders have no business in it
      child = spawn('nsenter', ['-t', String(pid), '-n', '--', process.execPath, '-e', SCRIPT], {
        stdio: ['pipe', 'pipe', 'ignore'],
        env,
      });
      await once(child, 'spawn');
    } catch (err) {
      journal.forget(entry);
      throw new Error(`could not start a DNS forwarder in the network namespace of pid ${pid}: ${(err as Error).message}`);
    }
    const start = processStartTicks(child.pid!);
    if (start !== null) journal.update(entry, [{ type: 'kill', pids: [{ pid: child.pid!, start }] }]);
    return new NetnsForwarder(child, journal, entry);
  }

  /** The nameserver's reply, or null (no answer within 5 s, or the forwarder is gone). */
  ask(proto: 'udp' | 'tcp', ns: { address: string; port: number }, query: Buffer): Promise<Buffer | null> {
    if (this.exited || query.length > 0xffff) return Promise.resolve(null);
    const tag = this.nextTag++ >>> 0;
    const h = Buffer.alloc(HEADER);
    h.writeUInt32BE(tag, 0);
    h.writeUInt8(proto === 'tcp' ? 1 : 0, 4);
    ns.address.split('.').forEach((b, i) => {
      h.writeUInt8(Number(b), 5 + i);
    });
    h.writeUInt16BE(ns.port, 9);
    h.writeUInt16BE(query.length, 11);
    return new Promise((resolve) => {
      this.pending.set(tag, resolve);
      this.child.stdin!.write(Buffer.concat([h, query]));
    });
  }

  async close(): Promise<void> {
    const exited = this.exited ? Promise.resolve() : once(this.child, 'exit');
    this.child.stdin!.end();
    await this.journal.revert(this.entry); // SIGKILL if it still runs
    await exited;
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= REPLY_HEADER) {
      const len = this.buf.readUInt16BE(4);
      if (this.buf.length < REPLY_HEADER + len) return;
      const tag = this.buf.readUInt32BE(0);
      const reply = Buffer.from(this.buf.subarray(REPLY_HEADER, REPLY_HEADER + len));
      this.buf = this.buf.subarray(REPLY_HEADER + len);
      const done = this.pending.get(tag);
      this.pending.delete(tag);
      done?.(len === 0 ? null : reply);
    }
  }
}
