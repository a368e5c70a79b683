#!/usr/bin/env bash
# Builds the local Docker images the tests run (steps d-e of scripts/setup.sh; can run alone):
#   vitest-chaos/base:bookworm       debootstrap --variant=minbase bookworm, `docker import`ed
#                                    (there is no registry here: nothing can be pulled)
#   vitest-chaos/<name>:latest       for every fixtures/<name>/Dockerfile (FROM the base image);
#                                    fixtures/<name>/prepare.sh, if any, runs first (it may need
#                                    node_modules: scripts/setup.sh runs npm ci before this)
# Idempotent: the base is built only when missing; a fixture is rebuilt only when the sha256 of
# its directory (label vitest-chaos.fixture-hash) or the base image's id (label
# vitest-chaos.base-id) differ from what the existing image carries.
#
# Environment:
#   SETUP_REBUILD_IMAGES=1     rebuild the base and every fixture image anyway
#   SETUP_BUILD_NETWORK=auto   auto | default | host: network of `docker build`'s RUN steps
#                              (auto: default bridge if it reaches the Debian mirror, else host)
#   SETUP_DEBIAN_MIRROR=URL    default http://deb.debian.org/debian
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE_IMAGE=vitest-chaos/base:bookworm
SUITE=bookworm
MIRROR=${SETUP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
REBUILD=${SETUP_REBUILD_IMAGES:-0}
BUILD_NETWORK=${SETUP_BUILD_NETWORK:-auto}
LOG_DIR=$ROOT/.cache/setup
mkdir -p "$LOG_DIR"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'; }
show_log() { printf '[setup] --- last lines of %s ---\n' "$1" >&2; tail -n "${2:-25}" "$1" >&2 || true; }

case $BUILD_NETWORK in auto|default|host) ;; *) die "SETUP_BUILD_NETWORK must be auto, default or host";; esac
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info): run scripts/setup.sh first"

# ------------------------------------------------------------------ d. base image

WORK=
cleanup_work() {
  [[ -n $WORK && -d $WORK ]] || return 0
  # debootstrap mounts proc/sys inside the target; never rm -rf through a live mount
  awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$WORK"
  WORK=
}

configure_rootfs() {
  local r=$1
  # the .debs debootstrap downloaded: 40+ MB the image does not need
  find "$r/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -delete
  rm -rf "$r/var/cache/apt/archives/partial/"*
  # keep /var/lib/apt/lists and sources.list: Dockerfiles FROM this image run apt-get update/install
  grep -qs "^deb .* $SUITE main" "$r/etc/apt/sources.list" ||
    echo "deb $MIRROR $SUITE main" >"$r/etc/apt/sources.list"
  echo 'Acquire::Languages "none";' >"$r/etc/apt/apt.conf.d/docker-no-languages"
  # no service may start while a Dockerfile installs packages
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
  chmod 755 "$r/usr/sbin/policy-rc.d"
  # debootstrap copied the host's; Docker bind-mounts its own at run time
  : >"$r/etc/resolv.conf"
}

build_base() {
  local t0=$EPOCHREALTIME
  if [[ $REBUILD != 1 ]] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "base image $BASE_IMAGE: present ($(since "$t0"))"
    return
  fi
  [[ $EUID -eq 0 ]] || die "debootstrap needs root: sudo bash scripts/setup.sh"
  command -v debootstrap >/dev/null || die "debootstrap is not installed: apt-get install -y debootstrap"

  WORK=$(mktemp -d /var/tmp/vitest-chaos-rootfs.XXXXXX)
  trap cleanup_work EXIT
  local rootfs=$WORK/rootfs
  log "base image $BASE_IMAGE: debootstrap --variant=minbase $SUITE $MIRROR (about 40 s, log .cache/setup/debootstrap.log)"
  if ! debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$LOG_DIR/debootstrap.log" 2>&1; then
    show_log "$LOG_DIR/debootstrap.log"
    die "debootstrap failed (is $MIRROR reachable?)"
  fi
  local t1=$EPOCHREALTIME
  configure_rootfs "$rootfs"
  tar --numeric-owner --one-file-system -C "$rootfs" -c . |
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["bash"]' \
      --change "LABEL vitest-chaos.base=debootstrap-minbase-$SUITE" \
      --change "LABEL vitest-chaos.mirror=$MIRROR" \
      --message "debootstrap --variant=minbase $SUITE $MIRROR" \
      - "$BASE_IMAGE" >/dev/null
  local t2=$EPOCHREALTIME
  cleanup_work
  trap - EXIT
  docker run --rm --network none "$BASE_IMAGE" true ||
    die "$BASE_IMAGE was imported but 'docker run --rm $BASE_IMAGE true' fails"
  log "base image $BASE_IMAGE: built ($(since "$t0"): debootstrap $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s, import $(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.1f", b-a}') s)"
}

# ------------------------------------------------------------------ e. fixture images

# sha256 over the fixture directory: every file's relative path and content, in a stable order
fixture_hash() {
  (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) | sha256sum | cut -d' ' -f1
}

# Does a container on Docker's default bridge reach the Debian mirror? (RUN apt-get needs it)
pick_build_network() {
  [[ $BUILD_NETWORK == auto ]] || return 0
  local hostport host port
  hostport=${MIRROR#*://}; hostport=${hostport%%/*}
  host=${hostport%%:*}
  if [[ $hostport == *:* ]]; then port=${hostport##*:}
  elif [[ $MIRROR == https:* ]]; then port=443
  else port=80; fi
  local probe="exec 3<>/dev/tcp/$host/$port"
  if docker run --rm "$BASE_IMAGE" timeout 10 bash -c "$probe" >/dev/null 2>&1; then
    BUILD_NETWORK=default
  elif docker run --rm --network host "$BASE_IMAGE" timeout 10 bash -c "$probe" >/dev/null 2>&1; then
    BUILD_NETWORK=host
    log "build network: the default bridge does not reach $host:$port, building with --network host"
  else
    die "no container reaches $host:$port (neither on the default bridge nor with --network host)"
  fi
}

build_fixture() {
  local dir=$1 name image want base_id have old_id reason t0=$EPOCHREALTIME
  name=$(basename "$dir")
  image=vitest-chaos/$name:latest
  # A fixture's prepare.sh writes what its build context needs from the host (trading-api: pg and
  # ioredis bundled from node_modules into build/), deterministically, before the hash is taken.
  if [[ -f $dir/prepare.sh ]]; then
    bash "$dir/prepare.sh" >"$LOG_DIR/prepare-$name.log" 2>&1 || {
      show_log "$LOG_DIR/prepare-$name.log"
      die "fixtures/$name/prepare.sh failed"
    }
  fi
  want=$(fixture_hash "$dir")
  base_id=$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE")
  have=$(docker image inspect --format \
    '{{index .Config.Labels "vitest-chaos.fixture-hash"}} {{index .Config.Labels "vitest-chaos.base-id"}}' \
    "$image" 2>/dev/null || true)
  if [[ $REBUILD != 1 && $have == "$want $base_id" ]]; then
    log "image $image: up to date ($(since "$t0"))"
    return
  fi
  if [[ -z $have ]]; then reason=missing
  elif [[ $REBUILD == 1 ]]; then reason=forced
  elif [[ ${have%% *} != "$want" ]]; then reason="fixtures/$name changed"
  else reason="base image changed"; fi

  pick_build_network
  local net=()
  [[ $BUILD_NETWORK == host ]] && net=(--network host)
  old_id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  log "image $image: building ($reason, log .cache/setup/build-$name.log)"
  # the Docker 28 client has no buildx here and the 20.10 engine's BuildKit is not needed: legacy builder
  if ! DOCKER_BUILDKIT=0 docker build "${net[@]}" --force-rm \
        --label "vitest-chaos.fixture-hash=$want" \
        --label "vitest-chaos.base-id=$base_id" \
        -t "$image" "$dir" >"$LOG_DIR/build-$name.log" 2>&1; then
    show_log "$LOG_DIR/build-$name.log"
    die "docker build of $image failed"
  fi
  # drop the image this one replaced (kept if a container still uses it)
  local new_id
  new_id=$(docker image inspect --format '{{.Id}}' "$image")
  if [[ -n $old_id && $old_id != "$new_id" ]]; then docker image rm "$old_id" >/dev/null 2>&1 || true; fi
  log "image $image: built ($(since "$t0"))"
}

build_base
shopt -s nullglob
for dockerfile in "$ROOT"/fixtures/*/Dockerfile; do
  build_fixture "$(dirname "$dockerfile")"
done
