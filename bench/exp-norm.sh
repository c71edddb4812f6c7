#!/usr/bin/env bash
# Experiment (a) of docs/experiments.md, at toy scale on this machine's CPU: does GN with Weight
# Standardization let a detector train from scratch where BN at a small batch does not (the
# paper's Table 4: BN from scratch < GN from scratch < GN+WS from scratch)?
# The same architecture and data, the standalone toy recipe (toy-train: 12 epochs, cosine, from
# scratch) at batch 2 with its learning rate scaled linearly (0.02 x 2/4), trained with
# BN, GN and GN+WS for each seed; COCO AP / AP50 on the val split. Usage:
#   bash bench/exp-norm.sh [seeds...]        (default seeds: 0 1 2)
# Environment: ARCH (default the toy E0-like 128x128/basicblock_16_11-21-21-21/fpn(P2-P5,c=32)/rpn/2fc),
# TRAIN / VAL / SIZE of the generated data set (96 / 32 / 128), THREADS (trainer threads, default 2).
# Output: bench/out/exp-norm.md (table), bench/out/exp-norm.{svg,png} (figure) and bench/out/exp-norm/<norm>-s<seed>/ (runs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(0 1 2)
ARCH="${ARCH:-128x128/basicblock_16_11-21-21-21/fpn(P2-P5,c=32)/rpn/2fc}"
TRAIN="${TRAIN:-96}"
VAL="${VAL:-32}"
SIZE="${SIZE:-128}"
THREADS="${THREADS:-2}"
OUT="$ROOT/bench/out/exp-norm"
for t in node bin/smnas native/build/smnas-trainer dist/protocol/recipes.js; do
  [ -e "$t" ] || command -v "$t" >/dev/null || { echo "exp-norm: missing $t (run bash scripts/setup.sh)" >&2; exit 2; }
done
mkdir -p "$OUT"
DATA="$OUT/data"
[ -f "$DATA/annotations/instances_val.json" ] || bin/smnas data synth --out "$DATA" --train "$TRAIN" --val "$VAL" --size "$SIZE" --classes 3 --seed 11 >/dev/null

# one recipe file per norm: toy-train as it was when docs/experiments.md's figures were measured
# (session 5: bench/toy-train-history.js's beforeSession8, with its scale jitter 0.9-1.1) at batch
# 2, lr scaled linearly with the batch
for norm in bn gn gn+ws; do
  node -e '
    const r = require("./bench/toy-train-history.js").beforeSession8;
    const norm = process.argv[1];
    const out = { ...r, name: `toy-train-b2-${norm}`, norm, batchSize: 2, optimizer: { ...r.optimizer, lr: r.optimizer.lr * 2 / r.batchSize } };
    require("fs").writeFileSync(process.argv[2], JSON.stringify(out, null, 1));
  ' "$norm" "$OUT/recipe-$norm.json"
done

rows=()
for seed in "${SEEDS[@]}"; do
  for norm in bn gn gn+ws; do
    run="$OUT/${norm}-s$seed"
    if [ ! -f "$run/result.json" ]; then
      start=$(date +%s)
      set +e
      bin/smnas train --arch "$ARCH" --data "$DATA" --recipe "$OUT/recipe-$norm.json" --seed "$seed" --threads "$THREADS" --out "$run" --json >"$run.json.tmp" 2>"$run.log"
      rc=$?
      set -e
      [ $rc -eq 0 ] || [ $rc -eq 4 ] || { echo "exp-norm: $norm seed $seed failed (exit $rc), see $run.log" >&2; exit 1; }
      mkdir -p "$run" && mv "$run.json.tmp" "$run/result.json"
      echo "exp-norm: $norm seed $seed done in $(( $(date +%s) - start )) s" >&2
    fi
    rows+=("$(node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const s = r.metrics && r.metrics.stats;
      console.log([process.argv[2], process.argv[3], r.kind, s ? s.AP.toFixed(4) : "-", s ? s.AP50.toFixed(4) : "-", r.wallSeconds.toFixed(0)].join("\t"));
    ' "$run/result.json" "$norm" "$seed")")
  done
done

{
  echo "arch: \`$ARCH\`; data: generated, $TRAIN train / $VAL val images at ${SIZE}px, 3 classes (seed 11);"
  echo "recipe: toy-train at batch 2, lr $(node -e 'const r=require("./bench/toy-train-history.js").beforeSession8;console.log(r.optimizer.lr*2/r.batchSize)'), 12 epochs, from scratch; trainer threads $THREADS."
  echo
  echo "| norm | seed | outcome | AP | AP50 | wall s |"
  echo "|---|---|---|---|---|---|"
  for r in "${rows[@]}"; do echo "| ${r//$'\t'/ | } |"; done
  echo
  echo "| norm | mean AP | mean AP50 |"
  echo "|---|---|---|"
  for norm in bn gn gn+ws; do
    printf '%s\n' "${rows[@]}" | awk -F'\t' -v n="$norm" '$1==n && $4!="-" {ap+=$4; ap50+=$5; k++} END {if (k) printf "| %s | %.4f | %.4f |\n", n, ap/k, ap50/k; else printf "| %s | - | - |\n", n}'
  done
} | tee "$ROOT/bench/out/exp-norm.md"
node dist/bench/exp-norm-plot.js "$OUT" "$ROOT/bench/out/exp-norm" >&2
