#!/usr/bin/env bash
# Orchestration benchmark (BENCHMARKS.md "## Orchestration"): the same code at concurrency 1
# (reference: per-evaluation overhead) and 50 (throughput), each on its own fresh dev server, then
# optionally a large campaign: ORCH_LARGE="--structural 200 --candidates 2 --per-candidate 1000".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
node_modules/.bin/tsc -p tsconfig.json >/dev/null || true   # others' in-progress files may not type-check; dist is still emitted
echo "# concurrency 1 (reference)"
node dist/bench/orchestration.js --structural 20 --concurrency 1 --json 2>/dev/null
echo "# concurrency 50"
node dist/bench/orchestration.js --structural 500 --population 50 --concurrency 50 --json 2>/dev/null
if [ -n "${ORCH_LARGE:-}" ]; then
  echo "# large: $ORCH_LARGE"
  # shellcheck disable=SC2086
  node dist/bench/orchestration.js $ORCH_LARGE --population 50 --concurrency 50 --json 2>/dev/null
fi
