#!/usr/bin/env bash
# The cgroup v2 part of the test suite, run in a pure cgroup v2 guest: Debian
# bookworm with systemd and Docker's systemd cgroup driver, under QEMU. This
# machine is hybrid (v1 controllers), so what most CI hosts run can only be
# tested in a guest. /dev/kvm here cannot run a stock kernel: QEMU emulates the
# CPU (TCG), 12-18x slower, so the v2 tests assert ratios, not milliseconds.
#
#   bash scripts/v2-guest.sh build         build the guest disk once (.cache/v2-guest/<key>/)
#   bash scripts/v2-guest.sh test [args]   run test/v2 in the guest (args go to vitest)
#   bash scripts/v2-guest.sh run 'cmd'     run a shell command in the guest (debugging)
#
# The repository is shared into the guest over 9p at the same path: node_modules,
# dist, the bpf objects and the addon are the host's (same Debian, same node
# binary, which the guest gets a copy of). The fixture images are `docker save`d
# here and `docker load`ed by a private dockerd into a second disk, the guest's
# /var/lib/docker; nothing is built, loaded or downloaded in the guest.
# Cache keys: for the guest, a hash of the functions that build it and of the node
# binary; for the Docker disk, the images' ids. Change one and the next call rebuilds it.
#
# Exit status: the guest command's; 77 after printing "skipped: <reason>" when this
# machine cannot run the guest (not root, no QEMU and none installable).
# Environment: V2_GUEST_TIMEOUT (seconds before the guest is killed, default 1500),
#   V2_GUEST_MEM (MiB, default 3072), V2_GUEST_CPUS (default 1), V2_GUEST_CONSOLE=1 (show the boot, with systemd's progress, on stderr).
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TIMEOUT=${V2_GUEST_TIMEOUT:-1500}
MEM=${V2_GUEST_MEM:-3072}
CPUS=${V2_GUEST_CPUS:-1}
SKIP=77
PACKAGES=systemd-sysv,udev,dbus,kmod,procps,iproute2,iptables,docker.io,libbpf1,linux-image-amd64,initramfs-tools,zstd

log() { printf '[v2-guest %s] %s\n' "$(date +%T)" "$*" >&2; }
skip() { echo "[v2-guest] skipped: $*"; exit $SKIP; }

# The Debian mirror this machine's apt already uses.
host_mirror() {
  { grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'
    grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'; } | grep -E '/debian/?$' | head -1
}

host_tools() {
  [[ $EUID -eq 0 ]] || skip "not root (debootstrap, 9p sharing and the guest's Docker need root)"
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing ${missing[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$ROOT/.cache/v2-guest-apt.log" 2>&1 || skip "cannot install ${missing[*]} (see .cache/v2-guest-apt.log)"
}

# Runs in the guest as a systemd service once Docker is up: mounts the control
# share (command, exit code) and the repository, runs the command with its output
# on the second serial port (this script's stdout), records the exit code, powers off.
guest_runner() {
  cat <<'EOF'
#!/bin/bash
mkdir -p /run/ctl
mount -t 9p -o trans=virtio,version=9p2000.L ctl /run/ctl
. /run/ctl/env
out=/dev/ttyS1
stty -F $out raw -echo
mkdir -p "$SHARE"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576,cache=loose repo "$SHARE" || echo "cannot mount $SHARE" > $out
ready=0
for i in $(seq 1 120); do timeout 10 docker version >/dev/null 2>&1 && { ready=1; break; }; sleep 1; done
if [ $ready = 1 ]; then
  echo "guest: docker answered at $(cut -d' ' -f1 /proc/uptime) s of uptime" > $out
  cd "$SHARE"
  export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  bash /run/ctl/cmd.sh < /dev/null > $out 2>&1
  echo $? > /run/ctl/rc
else
  { echo "guest: docker did not answer"; systemctl --no-pager status v2-guest-docker-disk docker; } > $out 2>&1
  echo 1 > /run/ctl/rc
fi
sync
echo o > /proc/sysrq-trigger
EOF
}

build_rootfs() {
  local r=$1 mirror
  mirror=$(host_mirror)
  [[ -n $mirror ]] || { log "no Debian mirror in this machine's apt sources"; return 1; }
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$r" "$mirror" >"$r.log" 2>&1 || { tail -20 "$r.log" >&2; return 1; }
  echo v2-guest >"$r/etc/hostname"
  chroot "$r" passwd -d root >/dev/null
  # the initrd only has to find the virtio disk; 9p is loaded before the runner needs it
  sed -i 's/^MODULES=.*/MODULES=list/' "$r/etc/initramfs-tools/initramfs.conf"
  printf 'virtio_pci\nvirtio_blk\next4\ncrc32c_generic\n' >"$r/etc/initramfs-tools/modules"
  chroot "$r" update-initramfs -u -k all >/dev/null 2>&1
  printf '9p\n9pnet_virtio\n' >"$r/etc/modules-load.d/9p.conf"
  # a throw-away guest: no timers, no getty, no waiting for a network it does not have
  for u in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
           e2scrub_reap.service getty@tty1.service serial-getty@ttyS0.service systemd-pstore.service; do
    chroot "$r" systemctl mask "$u" >/dev/null 2>&1 || true
  done
  guest_runner >"$r/usr/local/sbin/v2-guest-run"
  chmod +x "$r/usr/local/sbin/v2-guest-run"
  printf '[Unit]\nAfter=docker.service\nWants=docker.service\n[Service]\nType=oneshot\nExecStart=/usr/local/sbin/v2-guest-run\n[Install]\nWantedBy=multi-user.target\n' \
    >"$r/etc/systemd/system/v2-guest-run.service"
  chroot "$r" systemctl enable v2-guest-run.service >/dev/null 2>&1
  # Docker's data (the fixture images, loaded on the host) is the second disk. Mounted by
  # a plain service: a mount unit would wait for a device unit, which needs udev (masked).
  printf '[Unit]\nDefaultDependencies=no\nConditionPathExists=/dev/vdb\nBefore=docker.service containerd.service\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/mkdir -p /var/lib/docker\nExecStart=/bin/mount -o noatime /dev/vdb /var/lib/docker\n[Install]\nRequiredBy=docker.service\n' \
    >"$r/etc/systemd/system/v2-guest-docker-disk.service"
  chroot "$r" systemctl enable v2-guest-docker-disk.service >/dev/null 2>&1
  cp "$(readlink -f "$(command -v node)")" "$r/usr/local/bin/node"
  chroot "$r" apt-get clean
}

build_disk() {
  local dir=$1 t0=$SECONDS
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  log "building the guest (debootstrap bookworm with systemd, docker.io, the Debian kernel; about 2 min)"
  build_rootfs "$dir.tmp/rootfs"
  cp "$dir.tmp"/rootfs/boot/vmlinuz-* "$dir.tmp/vmlinuz"
  cp "$dir.tmp"/rootfs/boot/initrd.img-* "$dir.tmp/initrd.img"
  truncate -s 6G "$dir.tmp/root.img"
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 -d "$dir.tmp/rootfs" "$dir.tmp/root.img"
  rm -rf "$dir.tmp/rootfs"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  log "guest built in $((SECONDS - t0)) s"
}

cache_key() {
  { declare -f build_rootfs build_disk guest_runner; echo "$PACKAGES"; node --version; } | sha256sum | cut -c1-12
}

# The fixture images test/v2 starts, loaded into Docker's data directory on this host by a
# second, private dockerd (same Debian docker.io as the guest's) and made an ext4 disk that
# the guest mounts at /var/lib/docker. Loading them in the guest instead costs minutes of
# emulated hashing and unpacking; here it takes seconds.
IMAGES=(vitest-chaos/http-server:latest)
DOCKERD_PID=
build_docker_disk() {
  local img=$1 tmp=$1.tmp x t0=$SECONDS
  rm -rf "$tmp" && mkdir -p "$tmp/data"
  x=$(mktemp -d /run/v2-guest-dockerd.XXXXXX)
  # In a network namespace of its own: a dockerd started with --bridge=none deletes the host's
  # docker0 (libnetwork removes the default bridge it is told not to use), which broke every
  # container start on this machine until the host's dockerd made it again.
  unshare --net -- dockerd --data-root "$tmp/data" --exec-root "$x/exec" --pidfile "$x/pid" -H "unix://$x/sock" \
    --bridge=none --iptables=false --ip-masq=false --storage-driver=overlay2 >"$tmp/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  local i ok=1
  for i in $(seq 1 150); do docker -H "unix://$x/sock" version >/dev/null 2>&1 && break; sleep 0.2; done
  docker save "${IMAGES[@]}" | docker -H "unix://$x/sock" load -q >/dev/null || ok=0
  kill "$DOCKERD_PID" && wait "$DOCKERD_PID" || true
  DOCKERD_PID=
  rm -rf "$x"
  [[ $ok == 1 ]] || { tail -20 "$tmp/dockerd.log" >&2; return 1; }
  # only the images; the guest's dockerd makes the rest (networks, containerd's state) itself
  find "$tmp/data" -mindepth 1 -maxdepth 1 ! -name image ! -name overlay2 -exec rm -rf {} +
  truncate -s "$(($(du -sm "$tmp/data" | cut -f1) * 2 + 1024))M" "$tmp/docker.img"
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 -d "$tmp/data" "$tmp/docker.img"
  mv "$tmp/docker.img" "$img" && rm -rf "$tmp"
  log "fixture images loaded into the guest's Docker disk in $((SECONDS - t0)) s"
}

DOCKER_DISK=
ensure_docker_disk() {
  local ids
  ids=$( { docker image inspect --format '{{.Id}}' "${IMAGES[@]}" && dockerd --version && declare -f build_docker_disk; } | sha256sum | cut -c1-12) ||
    { log "fixture images missing: run scripts/setup.sh"; exit 1; }
  DOCKER_DISK=$ROOT/.cache/v2-guest/docker-$ids.img
  [[ -f $DOCKER_DISK ]] && return 0
  rm -f "$ROOT"/.cache/v2-guest/docker-*.img "$ROOT"/.cache/v2-guest/images-*.tar
  build_docker_disk "$DOCKER_DISK" || { log "loading the fixture images failed"; exit 1; }
}

GUEST=
ensure_guest() {
  host_tools
  GUEST=$ROOT/.cache/v2-guest/$(cache_key)
  [[ -f $GUEST/root.img ]] && return 0
  # older guests were built by other versions of this script
  find "$ROOT/.cache/v2-guest" -mindepth 1 -maxdepth 1 -type d ! -name "$(basename "$GUEST")*" ! -name 'docker-*' -exec rm -rf {} + 2>/dev/null || true
  build_disk "$GUEST" || { log "guest build failed"; exit 1; }
}

# Boots the guest, runs $1 (a shell script) in it in the repository, returns its exit code.
CTL=
trap '[[ -n $DOCKERD_PID ]] && kill "$DOCKERD_PID" 2>/dev/null; [[ -n $CTL ]] && rm -rf "$CTL"; true' EXIT
run_in_guest() {
  local ctl qrc=0 console_pid= t0=$SECONDS
  ctl=$(mktemp -d /tmp/v2-guest.XXXXXX)
  CTL=$ctl
  printf '%s\n' "$1" >"$ctl/cmd.sh"
  printf 'SHARE=%q\n' "$ROOT" >"$ctl/env"
  : >"$ctl/console.log"
  local boot_log='quiet loglevel=3 systemd.show_status=0'
  if [[ ${V2_GUEST_CONSOLE:-0} == 1 ]]; then
    boot_log='systemd.show_status=1'
    tail -F "$ctl/console.log" >&2 & console_pid=$!
  fi
  # Emulated, every unit costs seconds: no device manager (the kernel loads modules on demand)
  # and no logins. snapshot=on: the guest's writes go to a temporary overlay, the disk stays clean.
  local masks='' u
  for u in systemd-udevd systemd-udev-trigger systemd-udev-settle systemd-logind systemd-user-sessions; do masks+=" systemd.mask=$u.service"; done
  # QEMU emulates the CPU and keeps a host core busy: lowest priority, one vCPU by default.
  # -la57: with QEMU's 5-level paging, Debian's 6.1 kernel refuses copy_from_kernel_nofault()
  # on its own addresses, so d_path() prints "xxxx" for every path (/proc/*/mountinfo,
  # /proc/*/exe, fd links) and bpf_probe_read_kernel() fails; 4-level paging has neither.
  timeout --foreground -k 10 "$TIMEOUT" nice -n 19 qemu-system-x86_64 \
    -accel tcg,thread=multi,tb-size=512 -cpu max,-svm,-vmx,-la57 -M q35 -m "$MEM" -smp "$CPUS" \
    -nodefaults -display none -monitor none -no-reboot -nic none \
    -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 $boot_log panic=1 systemd.unified_cgroup_hierarchy=1 8250.nr_uarts=2 apparmor=0$masks" \
    -drive file="$GUEST/root.img",format=raw,if=virtio,snapshot=on,cache=unsafe \
    ${DOCKER_DISK:+-drive file="$DOCKER_DISK",format=raw,if=virtio,snapshot=on,cache=unsafe} \
    -virtfs local,path="$ctl",mount_tag=ctl,security_model=none,id=ctl \
    -virtfs local,path="$ROOT",mount_tag=repo,security_model=passthrough,id=repo \
    -serial "file:$ctl/console.log" -serial stdio </dev/null || qrc=$?
  if [[ -n $console_pid ]]; then kill "$console_pid" 2>/dev/null || true; fi
  log "the guest ran $((SECONDS - t0)) s (boot, command, power-off)"
  if [[ -f $ctl/rc ]]; then return "$(cat "$ctl/rc")"; fi
  log "the guest ended without an exit code (qemu status $qrc; 124 = timed out after ${TIMEOUT} s); console:"
  tail -n 30 "$ctl/console.log" >&2
  return 255
}

mkdir -p "$ROOT/.cache/v2-guest"
case ${1:-} in
  build)
    ensure_guest
    ;;
  run)
    [[ $# -ge 2 ]] || { echo "usage: $0 run 'shell command'" >&2; exit 2; }
    ensure_guest
    ensure_docker_disk
    run_in_guest "$2"
    ;;
  test)
    shift
    ensure_guest
    ensure_docker_disk
    run_in_guest "$(cat <<EOF
set -e
echo "guest: kernel \$(uname -r), \$(stat -fc %T /sys/fs/cgroup), docker \$(docker info --format '{{.CgroupDriver}} driver, cgroup v{{.CgroupVersion}}'), images: \$(docker image ls --format '{{.Repository}}' | tr '\n' ' ')"
echo "guest: starting vitest at \$(cut -d' ' -f1 /proc/uptime) s of uptime"
export TESTCONTAINERS_RYUK_DISABLED=true CI=1  # CI: a plain reporter on the serial line
node node_modules/vitest/vitest.mjs run --config test/v2/vitest.config.ts \
  --reporter=default --reporter=json --outputFile.json=.cache/v2-results.json $(printf '%q ' "$@")
EOF
)"
    ;;
  *)
    sed -n '2,24p' "$0" >&2
    exit 2
    ;;
esac
