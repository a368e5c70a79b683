#!/usr/bin/env bash
# The main job of the README: set-up (idempotent), then the game day: ten experiments
# (examples/NN-*.gameday.ts) on the trading stack (nginx, the trading API, PostgreSQL,
# Redis; examples/trading/). Prints the game day's wall time at the end.
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
T0=$EPOCHREALTIME
rc=0
npx vitest run --config examples/vitest.config.ts "$@" || rc=$?
echo "[gameday] wall time: $(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }') (the experiments, set-up excluded); exit $rc"
exit $rc
