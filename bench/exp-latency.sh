#!/usr/bin/env bash
# Re-measure the batch-1 CPU latency of a campaign's stage-one models (experiment (c) of
# docs/experiments.md) with their trained weights on the campaign's validation image, one model at
# a time with one trainer thread, when the campaign's own measurements were taken on a loaded host.
# Writes <out>.jsonl ({arch, medianMs, p90Ms}) for `exp-analyse --latency <out>.jsonl`. Usage:
#   bash bench/exp-latency.sh <campaign dir> <detection data dir> <out prefix>
# Environment: ITERATIONS (default 30), WARMUP (default 5).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DIR="${1:?campaign dir}"
DATA="${2:?detection data dir}"
OUT="${3:?out prefix}"
[ -f "$DIR/results.jsonl" ] || { echo "exp-latency: $DIR/results.jsonl not found" >&2; exit 2; }
: >"$OUT.jsonl.tmp"
node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
  for (const l of lines) if (l.stage === "structural" && l.mAP !== null && l.weights) console.log(l.arch + "\t" + l.weights);
' "$DIR/results.jsonl" | while IFS=$'\t' read -r arch weights; do
  bin/smnas bench --arch "$arch" --classes 3 --recipe toy-stage-one --weights "$weights" --data "$DATA" \
    --warmup "${WARMUP:-5}" --iterations "${ITERATIONS:-30}" --threads 1 --json 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);console.log(JSON.stringify({arch:process.argv[1],medianMs:r.medianMs,p90Ms:r.p90Ms??null}))})' "$arch" >>"$OUT.jsonl.tmp"
done
mv "$OUT.jsonl.tmp" "$OUT.jsonl"
echo "exp-latency: $(wc -l <"$OUT.jsonl") models in $OUT.jsonl" >&2
