// network-bandwidth: caps the target's throughput with rate-limiting qdiscs
// (HTB, see htb-shaper.ts). What it receives queues on its host-side veth;
// what it sends queues on its own interface (inside its network namespace), so
// its TCP senders feel the bottleneck as backpressure, as on a slow link.
import { statSync } from 'node:fs';
import { z } from 'zod';
import { ChaosSpecError } from '../../contracts/errors.js';
import { containerVeths } from '../../targets/host-veth.js';
import type { FaultKind } from '../fault-kind.js';
import { direction, formatRate, rate } from '../params.js';
import { qdiscCounters, shape, type ShapedDevice } from '../../targets/htb-shaper.js';

const schema = z.strictObject({
  /**
   * The cap, in bytes per second as a number, or a string with a tc unit: '500kbit',
   * '1mbit' (bits/s), '2mbps' (BYTES/s); 1 kbit/s to 100 gbit/s. Required.
   */
  rate,
  /** `'egress'`: what the target sends; `'ingress'`: what it receives; `'both'`. Default `'both'`. */
  direction,
});

export type NetworkBandwidthParams = z.input<typeof schema>;

type Way = 'ingress' | 'egress';
type WayCounters = Record<`${Way}${'Bytes' | 'Packets' | 'Dropped' | 'Overlimits'}`, number>;

/** The rate in force, and what the HTB qdiscs passed, dropped and held back (each direction shaped). */
export interface NetworkBandwidthStats extends Partial<WayCounters> {
  rateBytesPerSec: number;
}

const where = 'chaos.inject(network-bandwidth)';

export const networkBandwidth: FaultKind<'network-bandwidth', typeof schema, NetworkBandwidthStats> = {
  kind: 'network-bandwidth',
  matched: (s) => (s.ingressPackets ?? 0) + (s.egressPackets ?? 0),
  matchedWhat: 'packets through the rate limit',
  schema,
  async apply(p, target, ctx) {
    const refuse = (expected: string): never => {
      throw new ChaosSpecError(where, [{ field: 'target', value: target.name, expected }]);
    };
    let veths: ReturnType<typeof containerVeths> = [];
    try {
      veths = containerVeths(target.pid, target.name);
    } catch (err) {
      refuse(`a container on a bridge network (${(err as Error).message})`);
    }
    if (veths.length === 0) refuse('a container on a bridge network (it has no veth with a peer on the host)');
    // Docker's bind mount of the container's netns: unlike /proc/PID/ns/net it
    // cannot name another process's namespace later, so the reaper may use it.
    const info = await ctx.docker.getContainer(target.id).inspect();
    const netns = info.NetworkSettings?.SandboxKey ?? '';
    let sameNs = false;
    try {
      sameNs = netns !== '' && statSync(netns).ino === statSync(`/proc/${target.pid}/ns/net`).ino;
    } catch {
      // checked below
    }
    if (!sameNs) refuse(`a container whose network namespace Docker names in SandboxKey (got "${netns}")`);
    const devices: { dir: 'ingress' | 'egress'; d: ShapedDevice }[] = [];
    for (const v of veths) {
      if (p.direction !== 'egress') {
        devices.push({
          dir: 'ingress',
          d: {
            key: `host:${v.hostIfname}`,
            containerId: target.id,
            netns: null,
            dev: v.hostIfname,
            label: `${v.hostIfname} (host side of ${target.name})`,
          },
        });
      }
      if (p.direction !== 'ingress') {
        devices.push({
          dir: 'egress',
          d: { key: `${netns}:${v.ifname}`, containerId: target.id, netns, dev: v.ifname, label: `${v.ifname} of ${target.name}` },
        });
      }
    }
    const releases: (() => Promise<void>)[] = [];
    try {
      for (const { dir, d } of devices) {
        const what = `network-bandwidth ${formatRate(p.rate)} ${dir} on ${target.name}: htb on ${d.label}`;
        releases.push(await shape(d, p.rate, ctx.journal(), what));
      }
    } catch (err) {
      for (const r of releases.reverse()) await r().catch(() => undefined);
      throw err;
    }
    let final: NetworkBandwidthStats | undefined;
    const stats = (): NetworkBandwidthStats => {
      const s: NetworkBandwidthStats = { rateBytesPerSec: p.rate };
      for (const { dir, d } of devices) {
        const c = qdiscCounters(d);
        if (!c) continue;
        s[`${dir}Bytes`] = (s[`${dir}Bytes`] ?? 0) + c.bytes;
        s[`${dir}Packets`] = (s[`${dir}Packets`] ?? 0) + c.packets;
        s[`${dir}Dropped`] = (s[`${dir}Dropped`] ?? 0) + c.drops;
        s[`${dir}Overlimits`] = (s[`${dir}Overlimits`] ?? 0) + c.overlimits;
      }
      return s;
    };
    return {
      stats: () => final ?? stats(),
      async revert() {
        if (final) return;
        final = stats();
        const errors: unknown[] = [];
        for (const r of releases) await r().catch((e: unknown) => errors.push(e));
        if (errors.length) throw errors[0];
      },
    };
  },
};
