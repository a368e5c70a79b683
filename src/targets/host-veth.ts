// A container's veth interfaces and their peers on the host: where tc and TCX
// programs see all of the container's traffic without touching its namespace.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { TargetError } from './resolve-target.js';

export interface ContainerVeth {
  /** The interface inside the container, e.g. "eth0", and its ifindex there. */
  ifname: string;
  ifindex: number;
  /** Its peer in the host's network namespace (ours): ifindex and name. */
  hostIfindex: number;
  hostIfname: string;
}

const readInt = (path: string): number | null => {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(n) ? n : null;
  } catch {
    return null;
  }
};

/** ifindex -> name of the interfaces in this process's network namespace. */
function hostInterfaces(): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of readdirSync('/sys/class/net')) {
    const idx = readInt(`/sys/class/net/${name}/ifindex`);
    if (idx !== null) out.set(idx, name);
  }
  return out;
}

/**
 * The container's veths whose peer is in the host namespace. The container's
 * own sysfs (under /proc/PID/root) shows its namespace's interfaces; `nsenter
 * -n` alone would still read the host's /sys. A veth's iflink is its peer's
 * ifindex; the host peer's iflink must point back, or it is not our pair.
 */
export function containerVeths(pid: number, containerName = String(pid)): ContainerVeth[] {
  const base = `/proc/${pid}/root/sys/class/net`;
  let names: string[];
  try {
    if (statSync(`/proc/${pid}/ns/net`).ino === statSync('/proc/self/ns/net').ino) {
      throw new Error("it shares the host's network namespace (network mode host)");
    }
    names = readdirSync(base);
  } catch (err) {
    throw new TargetError(`cannot list the network interfaces of container ${containerName}: ${(err as Error).message}`);
  }
  const host = hostInterfaces();
  const out: ContainerVeth[] = [];
  for (const ifname of names.sort()) {
    if (ifname === 'lo') continue;
    const ifindex = readInt(`${base}/${ifname}/ifindex`);
    const iflink = readInt(`${base}/${ifname}/iflink`);
    if (ifindex === null || iflink === null || iflink === ifindex) continue;
    const hostIfname = host.get(iflink);
    if (!hostIfname || readInt(`/sys/class/net/${hostIfname}/iflink`) !== ifindex) continue;
    out.push({ ifname, ifindex, hostIfindex: iflink, hostIfname });
  }
  return out;
}
