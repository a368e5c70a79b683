#!/usr/bin/env bash
# Builds libbpf as a position-independent static library for the prebuilt addon:
# Debian's libbpf.a is not -fPIC, so it cannot go into a shared object. The source is
# Debian's own package of the installed libbpf-dev (same version, same headers), from
# the mirror in this machine's apt sources. Cached in .cache/libbpf/<version>/.
# Prints the directory holding lib/libbpf.a and include/bpf/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=$(dpkg-query -W -f='${Version}' libbpf-dev 2>/dev/null || true)
[[ -n $VERSION ]] || { echo "build-libbpf: libbpf-dev is not installed (apt-get install -y libbpf-dev)" >&2; exit 1; }
SRC_VERSION=${VERSION#*:}
OUT=$ROOT/.cache/libbpf/$SRC_VERSION
if [[ -f $OUT/lib/libbpf.a && -f $OUT/include/bpf/libbpf.h ]]; then echo "$OUT"; exit 0; fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
MIRROR=$({ sed -n -e 's/^URIs:[[:space:]]*//p' -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' \
  /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null || true; } | grep -v security | head -1)
[[ -n $MIRROR ]] || { echo "build-libbpf: no Debian mirror in the apt sources" >&2; exit 1; }
CODENAME=$(. /etc/os-release && echo "$VERSION_CODENAME")
mkdir -p "$WORK/lists/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $CODENAME main" >"$WORK/src.list"
APT=(-o "Dir::Etc::SourceList=$WORK/src.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$WORK/lists"
     -o APT::Sandbox::User=root)
apt-get "${APT[@]}" update -qq >&2
(cd "$WORK" && apt-get "${APT[@]}" source --download-only -qq "libbpf=$SRC_VERSION" >&2)
tar -C "$WORK" -xzf "$WORK"/libbpf_*.orig.tar.gz
SRCDIR=$(find "$WORK" -maxdepth 2 -name src -path '*libbpf*' -type d | head -1)
mkdir -p "$OUT.tmp/obj"
make -s -C "$SRCDIR" BUILD_STATIC_ONLY=y OBJDIR="$OUT.tmp/obj" CFLAGS='-O2 -fPIC -g0' -j2 >&2
make -s -C "$SRCDIR" install_headers DESTDIR="$OUT.tmp" PREFIX= INCLUDEDIR=/include >&2
mkdir -p "$OUT.tmp/lib" && mv "$OUT.tmp/obj/libbpf.a" "$OUT.tmp/lib/" && rm -rf "$OUT.tmp/obj"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
echo "$OUT"
