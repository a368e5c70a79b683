// The TCP connections a container has open now, from `ss` run in its network
// namespace: addresses, ports, whether it accepted them (its local port is one
// it listens on) and each socket's cookie (what bpf_get_socket_cookie() returns),
// so a fault that counts connections can count those it finds already open.
import { execFileSync } from 'node:child_process';

export interface OpenConnection {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** The target accepted it (its local port is one it listens on). */
  inbound: boolean;
  cookie: bigint;
}

function ss(pid: number, args: string[]): string {
  try {
    return execFileSync('nsenter', [`--net=/proc/${pid}/ns/net`, '--', 'ss', '-tnH', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT')
      throw new Error('nsenter (util-linux) and ss (iproute2) are needed to count the connections a target has open');
    throw new Error(`ss in the network namespace of process ${pid} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** "10.0.0.1:80" / "[::ffff:10.0.0.1]:80" -> address and port (IPv4 only; null otherwise). */
export function parseEndpoint(s: string): { address: string; port: number } | null {
  const m = /^(?:\[(?:::ffff:)?([\d.]+)\]|([\d.]+)):(\d+)$/.exec(s);
  if (!m) return null;
  return { address: (m[1] ?? m[2]) as string, port: Number(m[3]) };
}

/** Parses `ss -tnHe state established` and `ss -tlnH` output. */
export function parseConnections(established: string, listening: string): OpenConnection[] {
  const listens = new Set<number>();
  for (const line of listening.split('\n')) {
    const local = line.trim().split(/\s+/)[3];
    const e = local ? /:(\d+)$/.exec(local) : null;
    if (e) listens.add(Number(e[1]));
  }
  const out: OpenConnection[] = [];
  for (const line of established.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    // With a state filter ss leaves the state column out: Recv-Q Send-Q Local Peer [extras]
    const local = parseEndpoint(f[2] as string);
    const remote = parseEndpoint(f[3] as string);
    const cookie = /\bsk:([0-9a-f]+)\b/.exec(line)?.[1];
    if (!local || !remote || !cookie) continue;
    out.push({
      localAddress: local.address,
      localPort: local.port,
      remoteAddress: remote.address,
      remotePort: remote.port,
      inbound: listens.has(local.port),
      cookie: BigInt(`0x${cookie}`),
    });
  }
  return out;
}

/** The established TCP connections in the network namespace of `pid` (a container's pid 1). */
export function openConnections(pid: number): OpenConnection[] {
  return parseConnections(ss(pid, ['-e', 'state', 'established']), ss(pid, ['-l']));
}
