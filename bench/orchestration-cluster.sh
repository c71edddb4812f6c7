#!/usr/bin/env bash
# Orchestration overhead on the dev server and on the local production-shaped cluster
# (infra/local: Temporal server built from Go, PostgreSQL, mTLS), same code, same run, back to back:
# bench/orchestration.ts at concurrency 1 (seconds per evaluation = the per-evaluation overhead)
# and at concurrency 50 (throughput). Also samples the cluster's PostgreSQL connections during its
# runs and the database growth per evaluation. Results: docs/runtime.md "Sizing".
#
#   bash bench/orchestration-cluster.sh      # ORCH_N1 (20), ORCH_N50 (200): structural evaluations
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source infra/local/lib.sh
N1="${ORCH_N1:-20}"
N50="${ORCH_N50:-200}"
node_modules/.bin/tsc -p tsconfig.json >/dev/null
bash infra/local/up.sh
PGPASSWORD="$(cat "$STATE/pg/password")"
export PGPASSWORD
q() { psql -h 127.0.0.1 -p "$PG_PORT" -U temporal -d postgres -tAqc "$1"; }
dbsize() { q "SELECT sum(pg_database_size(datname)) FROM pg_database WHERE datname LIKE 'temporal%'"; }

run_cluster() {
  local max=0 n
  (
    while sleep 0.5; do q "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'temporal%'" || true; done
  ) >"$STATE/conn-samples" &
  local sampler=$!
  (set -a && . "$STATE/env/admin.env" && set +a && node dist/bench/orchestration.js --cluster "$@" --json 2>/dev/null)
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  for n in $(cat "$STATE/conn-samples"); do ((n > max)) && max=$n; done
  echo "{\"postgresConnectionsMax\": $max, \"postgresConnectionsIdle\": $(q "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'temporal%'")}"
}

echo "# dev server, concurrency 1"
node dist/bench/orchestration.js --structural "$N1" --concurrency 1 --json 2>/dev/null
echo "# cluster, concurrency 1"
before=$(dbsize)
run_cluster --structural "$N1" --concurrency 1
echo "# dev server, concurrency 50"
node dist/bench/orchestration.js --structural "$N50" --population 50 --concurrency 50 --json 2>/dev/null
echo "# cluster, concurrency 50"
run_cluster --structural "$N50" --population 50 --concurrency 50
after=$(dbsize)
echo "{\"databaseGrowthBytes\": $((after - before)), \"databaseBytes\": $after}"
