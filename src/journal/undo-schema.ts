// The undo actions a journal record can hold: a closed vocabulary. The reaper
// runs them as root from files on disk, so each type names exactly what it may
// touch (a cgroup controller file of a container, our qdisc on a device, a
// container our runs labelled, a process we started, the file disk-fill
// wrote). There is no generic command or path.
import { posix } from 'node:path';
import { z } from 'zod';

/** The handle of every root qdisc vitest-chaos adds (htb-shaper.ts): the only one a tc undo deletes. */
export const OUR_QDISC_HANDLE = '7c5d:';

/** The name of every file disk-fill writes: `vitest-chaos-disk-fill-<pid>-<n>`. */
export const DISK_FILL_FILE = /^vitest-chaos-disk-fill-\d{1,10}-\d{1,10}$/;

/** The cgroup files we write, and what each may be set to. */
export const CGROUP_FILES: Readonly<Record<string, RegExp>> = {
  // v1
  'cpu.cfs_quota_us': /^-?\d{1,20}$/,
  'memory.limit_in_bytes': /^-?\d{1,20}$/,
  'memory.memsw.limit_in_bytes': /^-?\d{1,20}$/,
  'blkio.throttle.read_bps_device': /^\d{1,4}:\d{1,7} \d{1,20}$/,
  'blkio.throttle.write_bps_device': /^\d{1,4}:\d{1,7} \d{1,20}$/,
  'blkio.throttle.read_iops_device': /^\d{1,4}:\d{1,7} \d{1,20}$/,
  'blkio.throttle.write_iops_device': /^\d{1,4}:\d{1,7} \d{1,20}$/,
  // v2
  'cpu.max': /^(max|\d{1,20}) \d{1,20}$/,
  'memory.max': /^(max|\d{1,20})$/,
  'memory.swap.max': /^(max|\d{1,20})$/,
  'io.max': /^\d{1,4}:\d{1,7} (rbps|wbps|riops|wiops)=(max|\d{1,20})$/,
};

const containerId = z.string().regex(/^[0-9a-f]{64}$/, { error: 'a full container id (64 hex digits)' });
const absolute = (what: string) =>
  z
    .string()
    .max(4096)
    .regex(/^\/[^\0\n]*$/, { error: `an absolute ${what}` })
    .refine((p) => p === '/' || (posix.normalize(p) === p && !p.endsWith('/')), {
      error: `a normalised ${what} (no "..", "//" or trailing "/")`,
    });

const cgroupWrite = z
  .strictObject({
    type: z.literal('cgroup-write'),
    /** A controller file of a container's cgroup: `<cgroup mount>/.../<container id>[.scope]/<file>`. */
    path: absolute('cgroup file path'),
    content: z.string().max(128),
  })
  .superRefine((a, ctx) => {
    const file = posix.basename(a.path);
    const format = CGROUP_FILES[file];
    if (!format)
      ctx.addIssue({
        code: 'custom',
        path: ['path'],
        message: `one of the files vitest-chaos writes (${Object.keys(CGROUP_FILES).join(', ')}), not "${file}"`,
      });
    else if (!format.test(a.content)) ctx.addIssue({ code: 'custom', path: ['content'], message: `a value of ${file} matching ${format}` });
  });

const pidStart = z.strictObject({
  pid: z
    .number()
    .int()
    .min(2)
    .max(2 ** 22),
  start: z.number().int().min(0),
});

export const undoActionSchema = z.discriminatedUnion('type', [
  cgroupWrite,
  /** Kill processes we started (burners, forwarders), if they are still the same processes. */
  z.strictObject({
    type: z.literal('kill'),
    pids: z.array(pidStart).max(1024),
    signal: z.enum(['SIGKILL', 'SIGCONT']).optional(),
  }),
  z.strictObject({ type: z.literal('docker-unpause'), containerId }),
  z.strictObject({ type: z.literal('docker-start'), containerId }),
  /** Remove the file disk-fill wrote in a container (rm -f, no shell). */
  z.strictObject({
    type: z.literal('disk-fill-remove'),
    containerId,
    dir: absolute('directory'),
    file: z.string().regex(DISK_FILL_FILE, { error: 'a disk-fill file name, vitest-chaos-disk-fill-<pid>-<n>' }),
  }),
  /** Delete our root qdisc from a container's veth (host side, netns null) or its interface inside its netns. */
  z.strictObject({
    type: z.literal('tc-qdisc-del'),
    containerId,
    netns: z
      .string()
      .regex(/^\/(var\/)?run\/docker\/netns\/[0-9a-f]{12}$/, { error: 'a Docker network namespace (/var/run/docker/netns/<12 hex>)' })
      .nullable(),
    device: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, { error: 'an interface name' }),
    handle: z.literal(OUR_QDISC_HANDLE, { error: `our qdisc handle ${OUR_QDISC_HANDLE}` }),
  }),
  /**
   * Remove a chain of ours from a container's netns: an NFQUEUE chain VC-Q<queue>-<O|I> (mangle table; jumped to
   * from OUTPUT for -O, INPUT for -I) or an inbound REDIRECT chain VC-H<port>-P (nat table, from PREROUTING).
   * `family: 6`: the chain is in the IPv6 tables (ip6tables); absent: the IPv4 ones.
   */
  z.strictObject({
    type: z.literal('iptables-chain-del'),
    containerId,
    netns: z
      .string()
      .regex(/^\/(var\/)?run\/docker\/netns\/[0-9a-f]{12}$/, { error: 'a Docker network namespace (/var/run/docker/netns/<12 hex>)' }),
    chain: z.string().regex(/^(VC-Q\d{1,5}-[OI]|VC-S-[OIP]|VC-H\d{1,5}-P)$/, {
      error: 'a chain of the packet data path, VC-Q<queue>-<O|I> or VC-S-<O|I>, or of an inbound proxy, VC-H<port>-P or VC-S-P',
    }),
    family: z.literal(6, { error: '6 (the IPv6 tables), or absent for the IPv4 ones' }).optional(),
  }),
]);

export type UndoAction = z.infer<typeof undoActionSchema>;

/** The name of every iptables chain the packet data path adds in a container's netns: VC-Q<queue>-<O|I> (a fault's), VC-S-<O|I> (the kept slot rules). */
export const QUEUE_CHAIN = /^(VC-Q\d{1,5}|VC-S)-[OI]$/;
/** The name of every nat chain an inbound proxy adds in a container's netns: VC-H<listener port>-P. */
export const REDIRECT_CHAIN = /^VC-H\d{1,5}-P$/;

/** The undo that writes `content` back to a cgroup controller file. */
export function cgroupWriteUndo(path: string, content: string): UndoAction {
  return { type: 'cgroup-write', path, content };
}
