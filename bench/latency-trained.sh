#!/usr/bin/env bash
# Stage-one latency with trained vs untrained weights (issue #11, BENCHMARKS.md "Latency: trained vs
# untrained weights"): a 2fc, a cascade and a RetinaNet detector of the toy space are trained
# briefly on generated shapes, then each is timed three ways on this machine, one after the other:
#   old        what campaigns measured before the latency protocol: an untrained model on a fixed
#              noise image (smnas bench without --data / --weights)
#   untrained  the protocol (seeded sample of validation images, batch 1, the recipe's score
#              threshold, NMS and top-k) with the untrained model
#   trained    the protocol with the trained weights: what campaigns now record
# Usage: bash bench/latency-trained.sh [out dir]      (default bench/out/latency-trained)
# Environment: EPOCHS (3), TRAIN (160 training images), SAMPLE (8 images), ROUNDS (5), WARMUP (2),
# THREADS (1: one trainer thread, as on the shared 2-core host).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${1:-bench/out/latency-trained}"
EPOCHS="${EPOCHS:-3}" SAMPLE="${SAMPLE:-8}" ROUNDS="${ROUNDS:-5}" WARMUP="${WARMUP:-2}" THREADS="${THREADS:-1}"
mkdir -p "$OUT"
DATA="$OUT/data"
[ -f "$DATA/annotations/instances_val.json" ] || bin/smnas data synth --out "$DATA" --train "${TRAIN:-160}" --val 40 --size 128 --classes 4 --seed 0 >&2
BODY='128x128/basicblock_16_1-21-21-21/fpn(P1-P4,c=32)'
: >"$OUT/results.jsonl"
for spec in "2fc|rpn/2fc" "cascade|rpn/cascade(n=3)" "retina|none/retina"; do
  name="${spec%%|*}"
  arch="$BODY/${spec#*|}"
  if [ ! -f "$OUT/$name/weights" ]; then
    echo "latency-trained: training $name ($EPOCHS epochs)" >&2
    bin/smnas train --arch "$arch" --data "$DATA" --recipe toy-stage-one --epochs "$EPOCHS" --threads "$THREADS" --out "$OUT/$name" --json >"$OUT/$name.train.json"
  fi
  echo "latency-trained: timing $name" >&2
  common=(--arch "$arch" --classes 4 --recipe toy-stage-one --warmup "$WARMUP" --threads "$THREADS" --json)
  bin/smnas bench "${common[@]}" --iterations $((SAMPLE * ROUNDS)) >"$OUT/$name.old.json"
  bin/smnas bench "${common[@]}" --data "$DATA" --sample "$SAMPLE" --rounds "$ROUNDS" >"$OUT/$name.untrained.json"
  bin/smnas bench "${common[@]}" --data "$DATA" --sample "$SAMPLE" --rounds "$ROUNDS" --weights "$OUT/$name/weights" >"$OUT/$name.trained.json"
  node -e '
    const fs = require("fs");
    const [name, arch, dir] = process.argv.slice(1);
    const j = (f) => JSON.parse(fs.readFileSync(`${dir}/${name}.${f}.json`, "utf8"));
    let ap = null;
    try { ap = JSON.parse(fs.readFileSync(`${dir}/${name}/metrics.json`, "utf8")).stats.AP; } catch {}
    const o = j("old"), u = j("untrained"), t = j("trained");
    console.log(JSON.stringify({ name, arch, AP: ap,
      old: { medianMs: o.medianMs, p90Ms: o.p90Ms },
      untrained: { medianMs: u.medianMs, p90Ms: u.p90Ms, spread: u.spread, detectionsPerImage: u.detectionsPerImage },
      trained: { medianMs: t.medianMs, p90Ms: t.p90Ms, spread: t.spread, detectionsPerImage: t.detectionsPerImage },
      device: t.environment.deviceModel, runtime: t.environment.runtime, threads: t.environment.threads }));
  ' "$name" "$arch" "$OUT" >>"$OUT/results.jsonl"
done
node -e '
  const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const f = (x) => x.toFixed(2);
  console.log(`device: ${rows[0].device}, ${rows[0].runtime}, ${rows[0].threads} thread(s)\n`);
  console.log("| head | AP | old: untrained, noise (ms) | untrained, val sample (ms) | trained, val sample (ms) | p90 trained | spread trained | detections/image untrained -> trained | trained / old |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const r of rows)
    console.log(`| ${r.name} | ${r.AP === null ? "-" : (100 * r.AP).toFixed(1) + " %"} | ${f(r.old.medianMs)} | ${f(r.untrained.medianMs)} | ${f(r.trained.medianMs)} | ${f(r.trained.p90Ms)} | ${r.trained.spread.toFixed(3)} | ${r.untrained.detectionsPerImage.toFixed(1)} -> ${r.trained.detectionsPerImage.toFixed(1)} | ${(r.trained.medianMs / r.old.medianMs).toFixed(2)}x |`);
' "$OUT/results.jsonl" | tee "$OUT/table.md"
