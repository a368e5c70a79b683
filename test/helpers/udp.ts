// Counting UDP datagrams that make it there and back, with sequence numbers so
// duplicates and late replies are not miscounted. Bounded in count and time.
import dgram from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

export interface EchoResult {
  sent: number;
  received: number;
  lost: number;
}

/** Sends `count` datagrams to host:port (paced) and counts the distinct echoes. */
export async function udpEchoRound(host: string, port: number, count: number, waitMs = 500): Promise<EchoResult> {
  const sock = dgram.createSocket('udp4');
  const seen = new Set<number>();
  sock.on('message', (msg) => {
    const seq = Number(msg.toString().split(':')[1]);
    if (Number.isInteger(seq) && seq < count) seen.add(seq);
  });
  sock.bind(0);
  await once(sock, 'listening');
  const tag = Math.random().toString(36).slice(2, 8);
  for (let i = 0; i < count; i++) {
    sock.send(`${tag}:${i}`, port, host);
    // At most 5 datagrams a ms: a single-threaded echo server keeps up on 2 busy cores.
    if (i % 5 === 4) await sleep(1);
  }
  await sleep(waitMs);
  sock.close();
  return { sent: count, received: seen.size, lost: count - seen.size };
}

/** A UDP echo server on the host, as the control "host process". */
export async function hostEchoServer(address = '127.0.0.1'): Promise<{ port: number; close(): void }> {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
  sock.bind(0, address);
  await once(sock, 'listening');
  return { port: sock.address().port, close: () => sock.close() };
}

/** A UDP sink on the host: counts datagrams received. */
export async function hostUdpSink(address: string): Promise<{ port: number; count(): number; close(): void }> {
  const sock = dgram.createSocket('udp4');
  let n = 0;
  sock.on('message', () => n++);
  sock.bind(0, address);
  await once(sock, 'listening');
  return { port: sock.address().port, count: () => n, close: () => sock.close() };
}
