#!/usr/bin/env bash
# Experiments (b) and (c) of docs/experiments.md, at toy scale on this machine's CPU:
#   (b) do the stage-two fronts dominate the stage-one candidates they start from (the paper's Fig. 4)?
#   (c) how do mAP and latency depend on input size, backbone, neck and head (the paper's Fig. 5)?
# One real toy campaign with a larger search than the main job's (stage one: $S1 evaluations,
# stage two: $S2 per candidate, 2 candidates, 1 finalist, no pretraining and no transfer), run on
# the local Temporal dev server and workers (bin/smnas dev), then bench/exp-analyse.ts on its
# results log. Usage:
#   bash bench/exp-search.sh [seed]                 # runs the campaign, then the analysis
#   SKIP_RUN=1 bash bench/exp-search.sh [seed]      # only the analysis of a finished campaign
# Environment: S1 (default 40), S2 (default 10), SMNAS_STATE (default .state), EXP_ID (default exp-search-s<seed>).
# Output: bench/out/exp-search-s<seed>.md / .json (tables), and the campaign under $SMNAS_STATE/artifacts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SEED="${1:-0}"
S1="${S1:-40}"
S2="${S2:-10}"
STATE="${SMNAS_STATE:-$ROOT/.state}"
export SMNAS_STATE="$STATE"
ID="${EXP_ID:-exp-search-s$SEED}"
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
for t in node bin/smnas native/build/smnas-trainer; do
  [ -e "$t" ] || command -v "$t" >/dev/null || { echo "exp-search: missing $t (run bash scripts/setup.sh)" >&2; exit 2; }
done

if [ "${SKIP_RUN:-0}" != "1" ]; then
  bin/smnas dev --detach
  CAMPAIGN="$OUT/$ID.campaign.json"
  cat >"$CAMPAIGN" <<JSON
{
  "id": "$ID",
  "profile": "toy",
  "seed": $SEED,
  "data": {
    "detection": { "root": "$STATE/data/exp-search/coco" },
    "synthesize": { "root": "$STATE/data/exp-search" }
  },
  "candidates": 2,
  "stages": {
    "structural": { "maxEvaluations": $S1, "population": 12, "recipe": "toy-stage-one" },
    "modular": { "maxEvaluationsPerCandidate": $S2, "population": 4, "recipe": "toy-stage-two", "finalists": 1 }
  }
}
JSON
  start=$(date +%s)
  bin/smnas search start --campaign "$CAMPAIGN" --follow
  echo "exp-search: campaign $ID took $(( $(date +%s) - start )) s" >&2
fi
[ -e dist/bench/exp-analyse.js ] || { echo "exp-search: missing dist/bench/exp-analyse.js (run bash scripts/setup.sh)" >&2; exit 2; }
node dist/bench/exp-analyse.js --campaign-dir "$STATE/artifacts/campaigns/$ID" --out "$OUT/$ID"
# the figures (stage-one and stage-two fronts, Fig. 5 views) from the campaign's own report
bin/smnas search report "$ID" --artifacts "$STATE/artifacts" --out "$OUT/$ID-report" >/dev/null
echo "exp-search: tables in $OUT/$ID.md, figures in $OUT/$ID-report/" >&2
