#!/usr/bin/env bash
# What `npm pack` ships besides JavaScript (run by prepack): the CO-RE eBPF objects (one build
# serves every kernel with BTF) and the N-API addon for this platform in the prebuildify layout
# (prebuilds/linux-x64/*.node, one binary for every Node version), libbpf linked statically.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
exec 1>&2 # npm pack --json owns stdout
make -s -C bpf
OUT=(prebuilds/linux-x64/*.node)
# an up-to-date prebuild is kept: a rebuild costs about 15 s
if [[ ! -f ${OUT[0]} || -n $(find native bpf binding.gyp -newer "${OUT[0]}" \( -name '*.cc' -o -name '*.h' -o -name '*.gyp' \) -print -quit) ]]; then
  LIBBPF_DIR=$(bash scripts/build-libbpf.sh)
  rm -rf prebuilds
  VITEST_CHAOS_LIBBPF_DIR=$LIBBPF_DIR node_modules/.bin/prebuildify --napi --strip --tag-libc
fi
# the prebuilt addon must need nothing of libbpf's at run time
for f in prebuilds/*/*.node; do
  if readelf -d "$f" | grep -q 'NEEDED.*libbpf'; then echo "prebuild: $f links libbpf dynamically" >&2; exit 1; fi
  echo "prebuild: $f ($(stat -c %s "$f") bytes; needs $(readelf -d "$f" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' '))"
done
