#!/usr/bin/env bash
# Idempotent machine set-up for vitest-chaos on Debian bookworm (run as root, from anywhere):
#   sudo bash scripts/setup.sh
# Steps, each skipped when already done:
#   1. Debian packages (apt-get only when one is missing)
#   2. Docker engine (starts dockerd in the background when `docker info` fails)
#   3. npm dependencies (npm ci when node_modules is missing or older than package-lock.json)
#   4. npm run build (bpf/, native/, TypeScript)
#   5. images: vitest-chaos/base:bookworm + fixtures/*  (scripts/fixture-images.sh; after npm:
#      fixtures/trading-api/prepare.sh bundles pg and ioredis from node_modules)
# Environment:
#   SETUP_SKIP_BUILD=1      skip step 4
#   SETUP_REBUILD_IMAGES=1  rebuild the images even when up to date
#   SETUP_BUILD_NETWORK=    auto (default) | default | host  (see scripts/fixture-images.sh)
# Logs go to .cache/setup/ and /var/log/vitest-chaos-dockerd.log. Nothing is exported.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOG_DIR=$ROOT/.cache/setup
DOCKERD_LOG=/var/log/vitest-chaos-dockerd.log
PACKAGES=(docker.io clang clang-format llvm libbpf-dev bpftool debootstrap linux-libc-dev iproute2 make g++ python3 curl ca-certificates chromium prometheus)
T_START=$EPOCHREALTIME
TIMES=()

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
show_log() { printf '[setup] --- last lines of %s ---\n' "$1" >&2; tail -n "${2:-25}" "$1" >&2 || true; }

# ------------------------------------------------------------------ a. root
if [[ $EUID -ne 0 ]]; then
  cat >&2 <<MSG
[setup] this script must run as root. Run:

    sudo bash scripts/setup.sh

[setup] root is needed to:
          - install the missing Debian packages (apt-get install ${PACKAGES[*]})
          - start the Docker engine (dockerd) when it is not running
          - debootstrap the base image vitest-chaos/base:bookworm (chroot, device nodes)
          - load and attach eBPF programs later, in the tests (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)
        npm ci / npm run build then run as \$SUDO_USER, so node_modules and dist stay yours.
MSG
  exit 1
fi

mkdir -p "$LOG_DIR"
# one set-up at a time (CI jobs may start together); fd 9 is closed for dockerd below
exec 9>/run/lock/vitest-chaos-setup.lock
flock -w 900 9 || die "another scripts/setup.sh holds /run/lock/vitest-chaos-setup.lock"

# npm steps run as the invoking user under sudo, so the repo does not fill with root-owned files
as_user() {
  if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
    sudo -u "$SUDO_USER" -H -- env "PATH=$PATH" "$@"
  else
    "$@"
  fi
}

# ------------------------------------------------------------------ b. Debian packages
step_packages() {
  local t0=$EPOCHREALTIME installed missing=() p
  installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null |
    awk '$NF == "installed" && $(NF-1) == "ok" { print $1 }' || true)
  for p in "${PACKAGES[@]}"; do
    grep -qx -- "$p" <<<"$installed" && continue
    # another Docker (docker-ce, ...) already provides the engine: do not pull docker.io over it
    if [[ $p == docker.io ]] && command -v dockerd >/dev/null; then continue; fi
    missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "debian packages: all ${#PACKAGES[@]} installed ($(since "$t0") s)"
    TIMES+=("packages $(since "$t0")")
    return
  fi
  log "debian packages: installing ${missing[*]} (log .cache/setup/apt.log)"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
       >"$LOG_DIR/apt.log" 2>&1; then
    show_log "$LOG_DIR/apt.log"
    die "apt-get failed"
  fi
  log "debian packages: installed ${#missing[@]} ($(since "$t0") s)"
  TIMES+=("packages $(since "$t0")")
}

# ------------------------------------------------------------------ c. Docker engine
no_docker_help() {
  cat >&2 <<MSG
[setup] No Docker engine could be started here. vitest-chaos attaches eBPF programs to the
        containers' cgroups, so the engine must run on THIS kernel. Either:
          - run on a Linux VM or host where you are root (any Debian bookworm: this script
            starts /usr/sbin/dockerd itself), or
          - if this is a container: restart it privileged, with the host's engine socket and
            cgroups, e.g.
              docker run --privileged --pid=host -v /var/run/docker.sock:/var/run/docker.sock \\
                -v /sys/fs/cgroup:/sys/fs/cgroup -v "\$PWD":/work -w /work IMAGE bash scripts/setup.sh
            (with the socket mounted, this script finds the engine and does not start one), or
          - start the engine yourself (systemctl start docker, or dockerd &) and re-run.
MSG
}

step_docker() {
  local t0=$EPOCHREALTIME pid= i
  if ! docker info >/dev/null 2>&1; then
    command -v docker >/dev/null || die "no docker client on PATH (apt-get install -y docker.io)"
    if [[ -n ${DOCKER_HOST:-} ]]; then
      docker info >&2 || true
      die "DOCKER_HOST=$DOCKER_HOST does not answer; unset it to use a local engine, or start that one"
    fi
    command -v dockerd >/dev/null || die "dockerd is not installed (apt-get install -y docker.io)"
    if pgrep -x dockerd >/dev/null; then
      log "docker engine: a dockerd is running but not answering yet, waiting"
    else
      log "docker engine: starting dockerd (log $DOCKERD_LOG)"
      # setsid + nohup: own session, survives this script and its terminal; fd 9 = our lock
      setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
      pid=$!
    fi
    for ((i = 0; i < 120; i++)); do
      docker info >/dev/null 2>&1 && break
      if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
        show_log "$DOCKERD_LOG"
        no_docker_help
        die "dockerd exited during start-up"
      fi
      sleep 0.5
    done
    if ! docker info >/dev/null 2>&1; then
      show_log "$DOCKERD_LOG"
      no_docker_help
      die "the Docker engine did not answer within 60 s"
    fi
    log "docker engine: started ($(since "$t0") s)"
  else
    log "docker engine: already running ($(since "$t0") s)"
  fi

  # The client (/usr/local/bin/docker 28.x, API 1.50) is newer than Debian's engine (20.10, API
  # 1.41): the client negotiates down to the engine's version, unless DOCKER_API_VERSION pins one.
  local v
  if ! v=$(docker version --format \
      '{{.Client.Version}}|{{.Client.APIVersion}}|{{.Server.Version}}|{{.Server.APIVersion}}|{{.Server.MinAPIVersion}}' 2>&1); then
    printf '%s\n' "$v" >&2
    [[ -n ${DOCKER_API_VERSION:-} ]] && log "hint: DOCKER_API_VERSION=$DOCKER_API_VERSION is set; unset it to let the client negotiate"
    die "the docker client ($(command -v docker)) cannot talk to the engine"
  fi
  local cv capi sv sapi smin
  IFS='|' read -r cv capi sv sapi smin <<<"$v"
  local cg
  cg=$(docker info --format 'cgroup v{{.CgroupVersion}} {{.CgroupDriver}}, {{.Driver}}' 2>/dev/null || echo '?')
  log "docker engine: client $cv ($(command -v docker)) -> engine $sv, API $capi (engine $smin..$sapi); $cg"
  pin_bridge_mac docker0
  mount_bpffs
  TIMES+=("docker $(since "$t0")")
}

# The packet data path hands iptables' bpf match its programs through bpffs (pinned for the
# moment the rule is made, src/targets/queue-slots.ts); most distributions mount it at boot,
# this machine's init does not. Without it the packet path commits a chain per fault (slower
# inject and revert, same effect). Idempotent.
mount_bpffs() {
  if [[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null) == bpf_fs ]]; then return 0; fi
  if mount -t bpf bpf /sys/fs/bpf 2>/dev/null; then
    log "bpffs mounted at /sys/fs/bpf"
  else
    log "hint: could not mount bpffs (mount -t bpf bpf /sys/fs/bpf): the packet path will commit iptables rules per fault"
  fi
}

# A Linux bridge whose address nobody set takes the lowest MAC of its ports, so Docker's default
# bridge changes address as containers come and go (00:00:00:00:00:00 with none), and frames the
# host already addressed to the old one are dropped at the bridge: a TCP retransmission timeout
# (300-400 ms) in a latency measurement (docs/network-datapath.md). Setting an address, even the
# one it has, pins it (the kernel's BROPT_SET_MAC_ADDR). Idempotent.
pin_bridge_mac() {
  local br=$1 mac
  [[ -d /sys/class/net/$br/bridge ]] || return 0
  mac=$(cat "/sys/class/net/$br/address")
  if [[ $mac == 00:00:00:00:00:00 ]]; then
    # no port yet: a locally administered address, as Docker makes its own
    mac=$(printf '02:42:%02x:%02x:%02x:%02x' $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)))
  fi
  if ip link set dev "$br" address "$mac" 2>/dev/null; then
    log "docker engine: $br's MAC address pinned at $mac"
  else
    log "hint: could not pin $br's MAC address (ip link set dev $br address $mac); latency tests may see rare 300-400 ms retransmissions"
  fi
}

# ------------------------------------------------------------------ d-e. images
step_images() {
  local t0=$EPOCHREALTIME
  bash "$ROOT/scripts/fixture-images.sh" 9>&-
  TIMES+=("images $(since "$t0")")
}

# ------------------------------------------------------------------ f. npm
step_npm() {
  local t0=$EPOCHREALTIME
  command -v node >/dev/null && command -v npm >/dev/null || die "node/npm not on PATH (Node >= 20.19 required)"
  cd "$ROOT"
  if [[ ! -d node_modules || ! -f node_modules/.package-lock.json ]] ||
     [[ -f package-lock.json && package-lock.json -nt node_modules/.package-lock.json ]]; then
    local cmd=(npm ci)
    [[ -f package-lock.json ]] || cmd=(npm install)
    # --ignore-scripts: the root package's own `install` script (make -C bpf && node-gyp rebuild)
    # is what `npm run build` does below; dependencies' scripts are not approved anyway (npm 11).
    log "npm: ${cmd[*]} (log .cache/setup/npm-install.log)"
    if ! as_user "${cmd[@]}" --ignore-scripts --no-audit --no-fund >"$LOG_DIR/npm-install.log" 2>&1; then
      show_log "$LOG_DIR/npm-install.log"
      die "${cmd[*]} failed"
    fi
    touch node_modules/.package-lock.json
    log "npm: dependencies installed ($(since "$t0") s, node $(node -v))"
  else
    log "npm: node_modules up to date ($(since "$t0") s, node $(node -v))"
  fi
  TIMES+=("npm $(since "$t0")")

  local t1=$EPOCHREALTIME
  if [[ ${SETUP_SKIP_BUILD:-0} == 1 ]]; then
    log "build: skipped (SETUP_SKIP_BUILD=1)"
    return
  fi
  log "build: npm run build (log .cache/setup/npm-build.log)"
  if ! as_user npm run build >"$LOG_DIR/npm-build.log" 2>&1; then
    show_log "$LOG_DIR/npm-build.log" 40
    die "npm run build failed"
  fi
  log "build: done ($(since "$t1") s)"
  TIMES+=("build $(since "$t1")")
}

step_packages
step_docker
step_npm # before the images: fixtures/trading-api/prepare.sh bundles from node_modules
step_images
log "done in $(since "$T_START") s ($(IFS=,; echo "${TIMES[*]}" | sed 's/,/, /g'))"
