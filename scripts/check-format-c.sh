#!/usr/bin/env bash
# Fails when a C/C++ source of bpf/ or native/ is not as clang-format (Debian's
# clang-format package; bpf/.clang-format and native/.clang-format) writes it.
# Fix with: clang-format -i $(git ls-files 'bpf/*.[ch]' 'native/*.cc')
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if ! command -v clang-format >/dev/null; then
  echo "check-format-c: clang-format is missing: apt-get install clang-format (or bash scripts/setup.sh)" >&2
  exit 2
fi
# Our own sources only: bpf/vmlinux.h is generated from the kernel's BTF.
mapfile -t FILES < <(ls bpf/*.c bpf/*.h native/*.cc native/*.h 2>/dev/null | grep -v '^bpf/vmlinux\.h$')
if ! clang-format --dry-run --Werror "${FILES[@]}"; then
  echo "check-format-c: the files above are not formatted; run: clang-format -i ${FILES[*]}" >&2
  exit 1
fi
echo "check-format-c: ${#FILES[@]} files formatted"
