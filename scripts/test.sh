#!/usr/bin/env bash
# The test command of the README: set-up (idempotent), then every test, then a
# one-line summary "N passed, N failed, N skipped".
#   sudo bash scripts/test.sh [vitest args...]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [[ $EUID -ne 0 ]]; then
  echo "[test] eBPF programs, cgroups and the Docker engine need root. Run:" >&2
  echo "" >&2
  echo "    sudo bash scripts/test.sh" >&2
  echo "" >&2
  echo "(as root it installs and starts what it needs; see scripts/setup.sh)" >&2
  exit 1
fi
bash scripts/setup.sh
mkdir -p .cache
export TESTCONTAINERS_RYUK_DISABLED=true
status=0
npm run -s typecheck || status=$?
npm run -s lint || status=$?
npx vitest run --reporter=default --reporter=json --outputFile.json=.cache/test-results.json "$@" || status=$?
node scripts/summary.mjs .cache/test-results.json || true
node scripts/leftovers.mjs || status=1
exit $status
