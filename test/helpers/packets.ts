// What a receiver really gets: datagram payloads compared byte for byte, a TCP
// stream compared with what was sent, and the kernel's checksum-error counters.
// Bounded in count and time.
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface PayloadResult {
  sent: number;
  /** Datagrams that came back, copies included. */
  received: number;
  /** Distinct sequence numbers that came back intact. */
  distinct: number;
  /** Datagrams that came back with bytes that were not sent. */
  corrupted: number;
  /** Intact datagrams that came back more than once (each extra copy counts). */
  duplicates: number;
}

const PAD = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(3);

/**
 * Sends `count` datagrams "tag:seq:padding:seq" to an echo server, `perMs` a
 * millisecond at most, and classifies what returns. The sequence number is
 * written twice: one flipped digit ("tag:12:" -> "tag:13:") would otherwise
 * turn a corrupted datagram into another intact one (seen once in CI).
 */
export async function udpPayloadRound(host: string, port: number, count: number, waitMs = 500, perMs = 5): Promise<PayloadResult> {
  const tag = Math.random().toString(36).slice(2, 8);
  const payload = (i: number) => `${tag}:${i}:${PAD}:${i}`;
  const sock = dgram.createSocket('udp4');
  const copies = new Map<number, number>();
  let received = 0;
  let corrupted = 0;
  sock.on('message', (msg) => {
    received++;
    const seq = Number(msg.toString('latin1').split(':')[1]);
    if (Number.isInteger(seq) && seq >= 0 && seq < count && msg.toString('latin1') === payload(seq)) {
      copies.set(seq, (copies.get(seq) ?? 0) + 1);
    } else {
      corrupted++;
    }
  });
  sock.bind(0);
  await once(sock, 'listening');
  for (let i = 0; i < count; i++) {
    sock.send(payload(i), port, host);
    if (i % perMs === perMs - 1) await sleep(1);
  }
  await sleep(waitMs);
  sock.close();
  let duplicates = 0;
  for (const n of copies.values()) duplicates += n - 1;
  return { sent: count, received, distinct: copies.size, corrupted, duplicates };
}

/**
 * Writes `bytes` of a known pattern to a TCP echo server, reads as many back,
 * and counts the bytes that differ. Throws if the echo is short after timeoutMs.
 */
export async function tcpEchoDiff(host: string, port: number, bytes: number, timeoutMs = 20_000): Promise<number> {
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) data[i] = 0x41 + (i % 26);
  const sock = net.connect(port, host);
  await once(sock, 'connect');
  const chunks: Buffer[] = [];
  let got = 0;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`TCP echo: ${got} of ${bytes} bytes after ${timeoutMs} ms`)), timeoutMs);
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= bytes) {
        clearTimeout(timer);
        resolve();
      }
    });
    sock.on('error', reject);
  });
  sock.write(data);
  try {
    await done;
  } finally {
    sock.destroy();
  }
  const back = Buffer.concat(chunks).subarray(0, bytes);
  let diff = 0;
  for (let i = 0; i < bytes; i++) if (back[i] !== data[i]) diff++;
  return diff;
}

/** A counter of /proc/PID/net/snmp (the network namespace of PID), e.g. ('Udp', 'InCsumErrors'). */
export function snmpCounter(pid: number | 'self', proto: 'Udp' | 'Tcp' | 'Ip', field: string): number {
  const lines = readFileSync(`/proc/${pid}/net/snmp`, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${proto}:`));
  const names = (lines[0] ?? '').split(/\s+/);
  const values = (lines[1] ?? '').split(/\s+/);
  const i = names.indexOf(field);
  if (i < 0) throw new Error(`no ${proto} ${field} in /proc/${pid}/net/snmp`);
  return Number(values[i]);
}
