// Typed access to the addon's sockets in a target's network namespace
// (native/netns-socket.cc): a TCP listener there, local connections from
// there, and the original destination of a REDIRECTed connection; IPv4 and IPv6.
import { loadAddon } from './addon.js';

interface NativeNetnsSocket {
  netnsListen(netns: string): { fd: number; port: number; ipv6: boolean };
  netnsConnect(netns: string, address: string, port: number, timeoutMs: number): number;
  originalDst(fd: number): { address: string; port: number };
  netnsDiagSocket(netns: string): number;
  listeningPorts(diagFd: number): number[];
  tcpSockets(diagFd: number): TcpSockets;
  dupFd(fd: number): number;
}

const addon = () => loadAddon() as unknown as NativeNetnsSocket;

/**
 * A listening TCP socket on every address of the namespace: its fd and port; `ipv6`: it is
 * dual-stack (IPv6 and v4-mapped IPv4), else IPv4 only (no IPv6 socket could be made there).
 */
export function listenInNetns(netns: string): { fd: number; port: number; ipv6: boolean } {
  return addon().netnsListen(netns);
}

/** A TCP connection made from inside the namespace (blocking up to timeoutMs: meant for the namespace's own addresses). */
export function connectInNetns(netns: string, address: string, port: number, timeoutMs = 2000): number {
  return addon().netnsConnect(netns, address, port, timeoutMs);
}

/** Where a connection a NAT REDIRECT sent to our listener was going (SO_ORIGINAL_DST). */
export function originalDestination(fd: number): { address: string; port: number } {
  return addon().originalDst(fd);
}

/** A sock_diag socket of the namespace (its fd, close-on-exec; the caller closes it): for listeningPorts. */
export function diagSocketInNetns(netns: string): number {
  return addon().netnsDiagSocket(netns);
}

/**
 * The TCP ports something listens on in a diag socket's namespace (IPv4 and IPv6), by sock_diag:
 * tens of microseconds, where /proc/<pid>/net/tcp makes the kernel walk every connection of the host.
 */
export function listeningPorts(diagFd: number): number[] {
  return addon().listeningPorts(diagFd);
}

/** The TCP sockets of a namespace: listening ports (sorted), and the established connections, addresses as 16 bytes (IPv4 as ::ffff:a.b.c.d). */
export interface TcpSockets {
  listening: number[];
  open: [local: Buffer, localPort: number, remote: Buffer, remotePort: number][];
}

/** The listening ports and established connections of a diag socket's namespace (IPv4 and IPv6), by sock_diag. */
export function tcpSockets(diagFd: number): TcpSockets {
  return addon().tcpSockets(diagFd);
}

/** A second descriptor of the same socket (close-on-exec): one to hand to Node, which closes it, while the first stays. */
export function dupFd(fd: number): number {
  return addon().dupFd(fd);
}
