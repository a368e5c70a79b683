#!/usr/bin/env bash
# The main job of the README: set-up (idempotent), then the example game day
# against the demo services in examples/.
#   sudo bash scripts/gameday.sh [vitest args...]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [[ $EUID -ne 0 ]]; then
  echo "[gameday] eBPF programs, cgroups and the Docker engine need root. Run:" >&2
  echo "" >&2
  echo "    sudo bash scripts/gameday.sh" >&2
  echo "" >&2
  echo "(as root it installs and starts what it needs; see scripts/setup.sh)" >&2
  exit 1
fi
bash scripts/setup.sh
export TESTCONTAINERS_RYUK_DISABLED=true
exec npx vitest run --config examples/vitest.config.ts "$@"
