#!/usr/bin/env bash
# The main job of the README: set-up (idempotent), then the example game day
# against the demo services in examples/.
#   sudo bash scripts/gameday.sh [vitest args...]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
export TESTCONTAINERS_RYUK_DISABLED=true
exec npx vitest run --config examples/vitest.config.ts "$@"
