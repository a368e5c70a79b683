// disk-fill: a file of `bytes` in a directory of the target (default /tmp)
// takes that much space from the filesystem that holds it (fallocate, or
// zeros where fallocate is missing). Its removal is journaled before it is
// written, and it is removed on revert. With overlay2, a container's root
// filesystem is the Docker host's disk: the space is the host's too.
import { posix } from 'node:path';
import { z } from 'zod';
import { ChaosSpecError } from '../../contracts/errors.js';
import { execIn } from '../../targets/container-exec.js';
import type { FaultKind } from '../fault-kind.js';

const BYTES = 'an integer number of bytes from 1 to 2^50';
const PATH = 'an absolute path of a directory in the container';

const schema = z.strictObject({
  /** Bytes taken from the filesystem, 1 to 2^50. Required. */
  bytes: z
    .number({ error: BYTES })
    .int({ error: BYTES })
    .min(1, { error: BYTES })
    .max(2 ** 50, { error: BYTES }),
  /** Absolute path of a directory in the container; the fault writes its own file there. Default '/tmp'. */
  path: z
    .string({ error: PATH })
    .regex(/^\/[^\0\n]*$/, { error: PATH })
    .default('/tmp'),
});

export type DiskFillParams = z.input<typeof schema>;

export interface DiskFillStats {
  /** Bytes written. */
  bytes: number;
  /** Space the filesystem had before, in bytes. */
  availableBeforeBytes: number;
  /** 1 once revert removed the file. */
  fileRemoved: number;
}

let files = 0;

export const diskFill: FaultKind<'disk-fill', typeof schema, DiskFillStats> = {
  kind: 'disk-fill',
  matched: (s) => (s.bytes > 0 ? 1 : 0),
  matchedWhat: 'files written into the target',
  schema,
  async apply(p, target, ctx) {
    const where = 'chaos.inject(disk-fill)';
    const df = await execIn(ctx.docker, target.id, ['sh', '-c', 'cd "$1" && df -Pk . | tail -n 1', 'sh', p.path]);
    const availBytes = Number(df.stdout.trim().split(/\s+/)[3]) * 1024;
    if (df.exitCode !== 0 || !Number.isFinite(availBytes)) {
      throw new ChaosSpecError(where, [{ field: 'path', value: p.path, expected: `${PATH} (${df.stderr.trim() || df.stdout.trim()})` }]);
    }
    if (p.bytes > availBytes) {
      throw new ChaosSpecError(where, [
        { field: 'bytes', value: p.bytes, expected: `at most the free space of ${p.path} in ${target.name} (${availBytes} bytes)` },
      ]);
    }
    const dir = posix.normalize(p.path).replace(/(.)\/+$/, '$1');
    const name = `vitest-chaos-disk-fill-${process.pid}-${++files}`;
    const file = posix.join(dir, name);
    const entry = ctx
      .journal()
      .record(`disk-fill ${p.bytes} bytes at ${file} in ${target.name}`, [
        { type: 'disk-fill-remove', containerId: target.id, dir, file: name },
      ]);
    const w = await execIn(ctx.docker, target.id, [
      'sh',
      '-c',
      'fallocate -l "$1" "$2" 2>/dev/null || head -c "$1" /dev/zero > "$2"',
      'sh',
      String(p.bytes),
      file,
    ]);
    if (w.exitCode !== 0) {
      await ctx.journal().revert(entry);
      throw new Error(`disk-fill could not write ${p.bytes} bytes to ${file} in ${target.name}: ${w.stderr.trim()}`);
    }
    let reverted = false;
    const stats = { bytes: p.bytes, availableBeforeBytes: availBytes };
    return {
      stats: () => ({ ...stats, fileRemoved: reverted ? 1 : 0 }),
      async revert() {
        if (reverted) return;
        await ctx.journal().revert(entry);
        reverted = true;
      },
    };
  },
};
