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
# THREADS (1: one trainer thread, as on the shared 2-core host), REPEAT (5 passes over the models).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${1:-bench/out/latency-trained}"
EPOCHS="${EPOCHS:-3}" SAMPLE="${SAMPLE:-8}" ROUNDS="${ROUNDS:-5}" WARMUP="${WARMUP:-2}" THREADS="${THREADS:-1}" REPEAT="${REPEAT:-5}"
mkdir -p "$OUT"
DATA="$OUT/data"
[ -f "$DATA/annotations/instances_val.json" ] || bin/smnas data synth --out "$DATA" --train "${TRAIN:-160}" --val 40 --size 128 --classes 4 --seed 0 >&2
BODY='128x128/basicblock_16_1-21-21-21/fpn(P1-P4,c=32)'
MODELS=("2fc|rpn/2fc" "cascade|rpn/cascade(n=3)" "retina|none/retina")
for spec in "${MODELS[@]}"; do
  name="${spec%%|*}"
  arch="$BODY/${spec#*|}"
  if [ ! -f "$OUT/$name/weights" ]; then
    echo "latency-trained: training $name ($EPOCHS epochs)" >&2
    bin/smnas train --arch "$arch" --data "$DATA" --recipe toy-stage-one --epochs "$EPOCHS" --threads "$THREADS" --out "$OUT/$name" --json >"$OUT/$name.train.json"
  fi
done
# REPEAT passes; each pass times every model three ways back to back, so a change of the host's
# load hits all three alike; the table gives the median over passes and their range
rm -f "$OUT"/*.pass*.json
for pass in $(seq 1 "$REPEAT"); do
  for spec in "${MODELS[@]}"; do
    name="${spec%%|*}"
    arch="$BODY/${spec#*|}"
    echo "latency-trained: pass $pass/$REPEAT, $name" >&2
    common=(--arch "$arch" --classes 4 --recipe toy-stage-one --warmup "$WARMUP" --threads "$THREADS" --json)
    bin/smnas bench "${common[@]}" --iterations $((SAMPLE * ROUNDS)) >"$OUT/$name.old.pass$pass.json" 2>/dev/null
    bin/smnas bench "${common[@]}" --data "$DATA" --sample "$SAMPLE" --rounds "$ROUNDS" >"$OUT/$name.untrained.pass$pass.json" 2>/dev/null
    bin/smnas bench "${common[@]}" --data "$DATA" --sample "$SAMPLE" --rounds "$ROUNDS" --weights "$OUT/$name/weights" >"$OUT/$name.trained.pass$pass.json" 2>/dev/null
  done
done
node -e '
  const fs = require("fs");
  const [dir, repeat] = [process.argv[1], Number(process.argv[2])];
  const med = (v) => { const s = [...v].sort((a, b) => a - b); const m = (s.length - 1) / 2; return (s[Math.floor(m)] + s[Math.ceil(m)]) / 2; };
  const f = (x) => x.toFixed(2);
  const rows = [];
  let env = null;
  for (const name of ["2fc", "cascade", "retina"]) {
    const runs = (variant) => Array.from({ length: repeat }, (_, i) => JSON.parse(fs.readFileSync(`${dir}/${name}.${variant}.pass${i + 1}.json`, "utf8")));
    const o = runs("old"), u = runs("untrained"), t = runs("trained");
    env = t[0].environment;
    let ap = null;
    try { ap = JSON.parse(fs.readFileSync(`${dir}/${name}/metrics.json`, "utf8")).stats.AP; } catch {}
    const sum = (rs) => ({ medianMs: med(rs.map((r) => r.medianMs)), min: Math.min(...rs.map((r) => r.medianMs)), max: Math.max(...rs.map((r) => r.medianMs)),
      spread: rs[0].spread === undefined ? null : med(rs.map((r) => r.spread)), detectionsPerImage: rs[0].detectionsPerImage ?? null });
    rows.push({ name, arch: t[0].arch, AP: ap, old: sum(o), untrained: sum(u), trained: sum(t), device: env.deviceModel, runtime: env.runtime, threads: env.threads, trainerVersion: env.trainerVersion });
  }
  fs.writeFileSync(`${dir}/results.jsonl`, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const cell = (s) => `${f(s.medianMs)} [${f(s.min)}-${f(s.max)}]`;
  console.log(`device: ${env.deviceModel}, ${env.runtime}, ${env.threads} thread(s), trainer ${env.trainerVersion.slice(0, 19)}; load average ${require("os").loadavg().map((x) => x.toFixed(1)).join(" ")} at the end\n`);
  console.log(`median over ${repeat} passes of the median of each measurement [range over passes], ms`);
  console.log("");
  console.log("| head | AP (trained) | old: untrained, noise image | untrained, val sample | trained, val sample | spread trained (median) | detections/image untrained -> trained | trained / old |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of rows)
    console.log(`| ${r.name} | ${r.AP === null ? "-" : (100 * r.AP).toFixed(1) + " %"} | ${cell(r.old)} | ${cell(r.untrained)} | ${cell(r.trained)} | ${r.trained.spread.toFixed(3)} | ${r.untrained.detectionsPerImage.toFixed(1)} -> ${r.trained.detectionsPerImage.toFixed(1)} | ${(r.trained.medianMs / r.old.medianMs).toFixed(2)}x |`);
' "$OUT" "$REPEAT" | tee "$OUT/table.md"
