// The kernel's view of a container's host-side veth, for the leak checks:
// which processes hold TCX links on it (from every process's fdinfo, not our
// bookkeeping) and what root qdisc it and the container's eth0 have.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { StartedTestContainer } from 'testcontainers';
import { containerVeths, type ContainerVeth } from '../../src/targets/host-veth.js';
import { TargetResolver } from '../../src/targets/resolve-target.js';

const resolver = new TargetResolver();

export async function pidOf(c: StartedTestContainer): Promise<number> {
  return (await resolver.resolve(c)).pid;
}

export async function vethOf(c: StartedTestContainer): Promise<ContainerVeth & { pid: number }> {
  const pid = await pidOf(c);
  const [v] = containerVeths(pid);
  if (!v) throw new Error(`${c.getName()} has no veth`);
  return { ...v, pid };
}

/** TCX links on a device, as "pid:ingress" / "pid:egress", from /proc/* /fdinfo. */
export function tcxLinksOn(ifindex: number): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fdinfo`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let info: string;
      try {
        info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      } catch {
        continue;
      }
      if (!/^link_type:\s+tcx$/m.test(info)) continue;
      const idx = Number(/^ifindex:\s+(\d+)/m.exec(info)?.[1]);
      const dir = /^attach_type:\s+\d+ \((\w+)\)/m.exec(info)?.[1] ?? '?';
      if (idx === ifindex) out.push(`${pid}:${dir}`);
    }
  }
  return out.sort();
}

/** "kind handle" of a device's root qdisc, in our netns or in a container's (by pid). */
export function rootQdisc(dev: string, pid?: number): string {
  const argv = [...(pid ? ['nsenter', `--net=/proc/${pid}/ns/net`, '--'] : []), 'tc', '-j', 'qdisc', 'show', 'dev', dev, 'root'];
  const out = JSON.parse(execFileSync(argv[0] as string, argv.slice(1), { encoding: 'utf8' })) as { kind: string; handle: string }[];
  return out.map((q) => `${q.kind} ${q.handle}`).join(', ');
}
