#!/usr/bin/env bash
# The default recipe against torchvision (BENCHMARKS.md, "Default recipe"): `bin/smnas train
# --recipe toy` (toy-train: BN from scratch, 12 epochs) on 128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc
# and torchvision's Faster R-CNN with its defaults on a ResNet-18 body from scratch
# (bench/torchvision-quality.py), both 12 epochs, batch 4, on generated shapes data sets (400
# train / 100 val, 4 classes) of the given seeds; both evaluated by the project's COCO evaluator.
# toy-train was tuned on seed 1 (bench/default-recipe-tune.sh); check on others.
#   bash bench/default-recipe.sh [seeds="2 3"] [threads=2]     (environment: ARCH, RECIPE = toy, a name or a file;
#   TV_SEED, TV_ONLY, FRESH below)
# The middle column trains torchvision's recipe (BN, step schedule, no clipping; the script above)
# on the native bench's model (bench/torchvision-quality.py ... native: FPN width 64, 256-wide
# head, the native sampling counts), so that the recipes compare on one model; the last column's
# model, torchvision's default, is 4x wider in the FPN and head with 4x the RoIs. The middle column
# is only meaningful for the default ARCH.
# The torchvision side does not depend on the native recipe and takes about 67 minutes per seed on
# a 2-core VM (its default model; about 10-20 for the native one): a seed whose torchvision
# evaluation is already in bench/out/default-recipe is reused (its file is named in the output);
# FRESH=1 runs it again. TV_SEED=<n> trains the torchvision side with training seed n (default 0;
# its files get -t<n>), to measure its spread over training seeds. TV_ONLY=1 runs only torchvision's
# default model (the native and same-model columns read "-"), for that spread.
# the body is one block, read whole before it runs: editing the file while it runs (hours here) cannot
# make bash execute a shifted fragment of it
{
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SEEDS="${1:-2 3}"; THREADS="${2:-2}"
/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null || { echo "bench/default-recipe.sh: the reference needs Debian's python3-torchvision (bash scripts/setup.sh installs it)" >&2; exit 1; }
[ -x native/build/smnas-trainer ] && [ -f dist/cli/smnas.js ] || { echo "bench/default-recipe.sh: build first (bash scripts/setup.sh)" >&2; exit 1; }
. bench/default-recipe-lib.sh
OUT="$DEFAULT_RECIPE_OUT"; mkdir -p "$OUT"
ARCH="${ARCH:-128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc}"; RECIPE="${RECIPE:-toy}"
# torchvision_eval SEED MODEL: runs bench/torchvision-quality.py on the seed's data with MODEL (default
# or native) unless its evaluation is there (FRESH=1 reruns it); prints the evaluation's file
torchvision_eval() {
  local seed="$1" model="$2" name data
  name="torchvision-$seed"; [ "$model" = default ] || name="torchvision-$model-$seed"
  [ "${TV_SEED:-0}" = 0 ] || name="$name-t$TV_SEED"
  data="$(default_recipe_data "$seed")"
  if [ "${FRESH:-0}" != 1 ] && [ -s "$OUT/$name-eval.json" ] && [ -s "$OUT/$name.wall" ]; then
    echo "seed $seed: torchvision ($model model) reused from $OUT/$name-eval.json (FRESH=1 reruns it)" >&2
  else
    local t0; t0=$(date +%s)
    /usr/bin/python3 bench/torchvision-quality.py "$data" 12 "$THREADS" "${TV_SEED:-0}" "$OUT/$name-dets.json" "$model" > "$OUT/$name.json" 2> "$OUT/$name.log"
    node dist/cli/smnas.js eval --gt "$data/annotations/instances_val.json" --dets "$OUT/$name-dets.json" --json > "$OUT/$name-eval.json"
    echo $(($(date +%s) - t0)) > "$OUT/$name.wall"
  fi
  echo "$OUT/$name"
}

echo "| data seed | native toy-train AP50 / AP / AP75 / AR100 | wall s | torchvision's recipe, same model | wall s | torchvision defaults | wall s |"
echo "|---|---|---|---|---|---|---|"
for seed in $SEEDS; do
  DATA="$(default_recipe_data "$seed")"
  if [ "${TV_ONLY:-0}" = 1 ]; then
    tv="$(torchvision_eval "$seed" default)"
    echo "| $seed | - | - | - | - | $(stats_cell "$tv-eval.json") | $(cat "$tv.wall") |"
    continue
  fi
  rm -rf "$OUT/native-$seed"
  t0=$(date +%s)
  node dist/cli/smnas.js train --arch "$ARCH" --data "$DATA" --recipe "$RECIPE" --threads "$THREADS" --out "$OUT/native-$seed" --json 2>"$OUT/native-$seed.log" | tail -n 1 > "$OUT/native-$seed.json"
  t1=$(date +%s)
  tvn="$(torchvision_eval "$seed" native)"
  tv="$(torchvision_eval "$seed" default)"
  echo "| $seed | $(stats_cell "$OUT/native-$seed.json") | $((t1 - t0)) | $(stats_cell "$tvn-eval.json") | $(cat "$tvn.wall") | $(stats_cell "$tv-eval.json") | $(cat "$tv.wall") |"
done
exit
}
