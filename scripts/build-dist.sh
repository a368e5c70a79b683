#!/usr/bin/env bash
# dist/ for the package: an incremental tsc, none when no source changed since, then out goes every file whose source is gone (a moved module must not
# ship twice).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
mkdir -p .cache
# the build info says what dist/ holds: without dist/ it would claim an emit that is not there
[[ -d dist ]] || rm -f .cache/tsbuildinfo-dist .cache/dist.stamp
# nothing changed since the last build: even an incremental tsc takes seconds on 2 busy cores
if [[ -f .cache/dist.stamp && -z $(find src tsconfig.json tsconfig.build.json package-lock.json -newer .cache/dist.stamp -print -quit) ]]; then
  echo "build-dist: dist/ is up to date" >&2
else
  node_modules/.bin/tsc -p tsconfig.build.json --incremental --tsBuildInfoFile .cache/tsbuildinfo-dist
  touch .cache/dist.stamp
fi
find dist -type f | while read -r f; do
  rel=${f#dist/}
  base=${rel%.d.ts}; base=${base%.js}
  [[ -f src/$base.ts ]] || { rm -f "$f"; echo "build-dist: removed stale $f" >&2; }
done
find dist -type d -empty -delete
