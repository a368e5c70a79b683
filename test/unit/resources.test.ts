import { describe, expect, it } from 'vitest';
import { majorMinor, mountCovering, parseMountinfo } from '../../src/targets/block-device.js';
import { findCgroupV1Mounts, parseCgroupV1Paths, v1Directory } from '../../src/targets/cgroup-v1.js';
import { hostControllers, parseControllers } from '../../src/targets/cgroup-controller.js';
import { parseCpuMax } from '../../src/targets/cpu-control.js';
import { parseIoLine } from '../../src/targets/io-control.js';
import { formatResourceSupport, resourceSupport } from '../../src/api/preflight.js';

describe('cgroup v1 discovery', () => {
  const mountinfo = [
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:7 - cgroup cgroup rw,cpu,cpuacct',
    '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate',
    '42 31 0:39 /docker /mnt/blkio\\040here rw - cgroup cgroup rw,blkio',
  ].join('\n');

  it('finds each hierarchy, its controllers (co-mounted or alone) and the part of it a mount shows', () => {
    const mounts = findCgroupV1Mounts(mountinfo);
    expect(mounts.map((m) => [m.mountPoint, m.root, m.controllers])).toEqual([
      ['/sys/fs/cgroup/cpu,cpuacct', '/', ['cpu', 'cpuacct']],
      ['/sys/fs/cgroup/memory', '/', ['memory']],
      ['/sys/fs/cgroup/systemd', '/', ['name=systemd']],
      ['/mnt/blkio here', '/docker', ['blkio']],
    ]);
  });

  it('reads the v1 lines of /proc/PID/cgroup and joins them to their mounts', () => {
    const lines = parseCgroupV1Paths('12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/docker/abc\n0::/docker/abc\n');
    expect(lines).toEqual([
      { controllers: ['cpu', 'cpuacct'], path: '/docker/abc' },
      { controllers: ['memory'], path: '/docker/abc' },
      { controllers: ['name=systemd'], path: '/docker/abc' },
    ]);
    const [cpu, , , blkio] = findCgroupV1Mounts(mountinfo);
    expect(v1Directory(cpu!, '/docker/abc')).toBe('/sys/fs/cgroup/cpu,cpuacct/docker/abc');
    expect(v1Directory(blkio!, '/docker/abc')).toBe('/mnt/blkio here/abc');
    expect(() => v1Directory(blkio!, '/other/abc')).toThrow(/outside the part of its hierarchy/);
  });
});

describe('block devices', () => {
  it('splits a dev_t into major:minor, large numbers included', () => {
    expect(majorMinor(65024n)).toBe('254:0');
    expect(majorMinor(2049n)).toBe('8:1');
    // major 259 (NVMe), minor 300: glibc's makedev encoding
    const dev = ((259n & 0xfffn) << 8n) | (300n & 0xffn) | ((300n & ~0xffn) << 12n);
    expect(majorMinor(dev)).toBe('259:300');
  });

  it('finds the mount that holds a path: the deepest, the last mounted there', () => {
    const mounts = parseMountinfo(
      [
        '224 123 0:61 / / rw - overlay overlay rw,upperdir=/var/lib/docker/overlay2/x/diff',
        '262 226 0:69 / /dev/shm rw - tmpfs shm rw',
        '270 224 254:0 /data /data rw - ext4 /dev/vda rw',
        '271 270 8:17 / /data/fast rw - ext4 /dev/sdb1 rw',
        '272 224 8:33 / /data/fast rw - xfs /dev/sdc1 rw',
      ].join('\n'),
    );
    expect(mountCovering(mounts, '/tmp/x')?.fsType).toBe('overlay');
    expect(mountCovering(mounts, '/dev/shm')?.majorMinor).toBe('0:69');
    expect(mountCovering(mounts, '/data/x')?.majorMinor).toBe('254:0');
    expect(mountCovering(mounts, '/data/fast/y')?.majorMinor).toBe('8:33');
    expect(mountCovering(mounts, '/database')?.fsType).toBe('overlay');
  });
});

describe('cgroup controllers: v1 or v2, and what each resource kind can use', () => {
  const hybrid = [
    '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
    '35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
    '36 31 0:33 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio',
    '40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd',
    '41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate',
  ].join('\n');
  const pureV2 = '28 22 0:25 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot';

  it('takes a controller from v1 where a hierarchy has it, else from v2 where the root offers it', () => {
    expect(hostControllers(hybrid, '')).toEqual({
      layout: 'hybrid',
      controllers: { cpu: { version: 1 }, memory: { version: 1 }, io: { version: 1 } },
    });
    expect(hostControllers(pureV2, 'cpuset cpu io memory hugetlb pids rdma misc')).toEqual({
      layout: 'v2',
      controllers: { cpu: { version: 2 }, memory: { version: 2 }, io: { version: 2 } },
    });
  });

  it('says why a kind cannot work when its controller is in neither version', () => {
    const host = hostControllers(pureV2, 'cpu memory pids');
    expect(host.controllers.io).toEqual({
      missing: expect.stringMatching(
        /no cgroup v1 "blkio" hierarchy .* does not offer "io" \(\/sys\/fs\/cgroup\/cgroup.controllers: "cpu memory pids"\)/,
      ),
    });
    const support = resourceSupport(host);
    expect(support.kinds.find((k) => k.kind === 'io-throttle')).toMatchObject({ works: false });
    expect(support.kinds.find((k) => k.kind === 'cpu-throttle')).toEqual({ kind: 'cpu-throttle', works: true, how: 'cgroup v2 cpu.max' });
    expect(formatResourceSupport(support)).toMatch(
      /^pure cgroup v2: cpu-throttle, cpu-stress, memory-stress, memory-limit, disk-fill work; io-throttle cannot: no cgroup v1 "blkio"/,
    );
    expect(formatResourceSupport(resourceSupport(hostControllers(hybrid, '')))).toBe(
      'hybrid cgroups (v1 controllers, a v2 tree): cpu-throttle, cpu-stress, memory-stress, memory-limit, io-throttle, disk-fill work',
    );
  });

  it('reads cpu.max, and the io.max / io.stat line of one disk', () => {
    expect(parseCpuMax('max 100000')).toEqual({ quota: null, period: 100000n });
    expect(parseCpuMax('20000 100000\n')).toEqual({ quota: 20000n, period: 100000n });
    expect(() => parseCpuMax('')).toThrow(/cpu.max holds ""/);
    const ioMax = '8:0 rbps=max wbps=1048576 riops=max wiops=max\n254:0 rbps=2097152 wbps=max riops=100 wiops=max';
    expect(parseIoLine(ioMax, '254:0')).toEqual({ rbps: '2097152', wbps: 'max', riops: '100', wiops: 'max' });
    expect(parseIoLine(ioMax, '254:1')).toEqual({});
    expect(parseIoLine('254:0 rbytes=1 wbytes=16777216 rios=1 wios=64 dbytes=0 dios=0', '254:0').wbytes).toBe('16777216');
    expect(parseControllers('cpuset cpu io memory pids\n')).toEqual(['cpuset', 'cpu', 'io', 'memory', 'pids']);
  });
});
