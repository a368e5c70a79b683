import { describe, expect, it } from 'vitest';
import { majorMinor, mountCovering, parseMountinfo } from '../../src/targets/block-device.js';
import { findCgroupV1Mounts, parseCgroupV1Paths, v1Directory } from '../../src/targets/cgroup-v1.js';

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
    const dev = (259n & 0xfffn) << 8n | (300n & 0xffn) | ((300n & ~0xffn) << 12n);
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
