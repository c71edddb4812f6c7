#!/usr/bin/env bash
# How `toy-train` (the default recipe, `bin/smnas train --recipe toy`) was chosen (BENCHMARKS.md,
# "Default recipe"): variants of it trained on one generated data set (the tuning seed is 1; seeds 2
# and 3 are for checking, with bench/default-recipe.sh against torchvision), 12 epochs each,
# 128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc, evaluated by the project's COCO evaluator.
#   bash bench/default-recipe-tune.sh [seed=1] [threads=1] [variant ...]
# Variants (everything not named is toy-train's: SGD lr 0.02, cosine, warm-up max(100, 10 %), batch
# 4, flips), written as changes to the recipe before session 8 (`before`: GN+WS, scale jitter
# 0.9-1.1, 256-wide FC, 128 RoIs, 600/300 training proposals):
#   before | wide (torchvision's sampling and head width: 1024-wide FC, 512 RoIs, 256 RPN samples,
#   2000 training / 1000 test proposals) | gn | gn-step (step x0.1 at 8, 11) | gn-wide |
#   gn-nojit (no scale jitter) | gnws-nojit | gn-nojit-props (torchvision's RPN sampling and
#   proposals only) | gn-nojit-wide | gn-nojit-lr01 (lr 0.01) | bn-nojit (BN) | shipped (toy-train
#   as it is now)
# Variants run one after another; start several calls to use more cores. Output:
# bench/out/default-recipe/tune/<variant>-s<seed>.{json,log} and a table line per variant.
# DRY=1 only writes the variants' recipe files (bench/out/default-recipe/tune/<variant>.json).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SEED="${1:-1}"; THREADS="${2:-1}"; shift $(( $# < 2 ? $# : 2 ))
VARIANTS=("$@")
[ ${#VARIANTS[@]} -gt 0 ] || VARIANTS=(before gn gn-step gn-wide gn-nojit gnws-nojit gn-nojit-props gn-nojit-wide shipped)
[ -x native/build/smnas-trainer ] && [ -f dist/cli/smnas.js ] || { echo "bench/default-recipe-tune.sh: build first (bash scripts/setup.sh)" >&2; exit 1; }
. bench/default-recipe-lib.sh
OUT="$DEFAULT_RECIPE_OUT"; mkdir -p "$OUT/tune"
DATA="$(default_recipe_data "$SEED")"
ARCH="${ARCH:-128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc}"
echo "| variant | data seed | AP50 / AP / AP75 / AR100 | wall s ($THREADS threads) |"
echo "|---|---|---|---|"
for v in "${VARIANTS[@]}"; do
  node -e "
const r = require('./dist/protocol/recipes.js').getDetectionRecipe('toy-train');
const toyRpn = { samplesPerImage: 128, positiveFraction: 0.5, trainPreNms: 600, trainPostNms: 300, testPreNms: 300, testPostNms: 100, nmsIou: 0.7 };
const wideRpn = { ...toyRpn, samplesPerImage: 256, trainPreNms: 2000, trainPostNms: 2000, testPreNms: 1000, testPostNms: 1000 };
const before = { norm: 'gn+ws', augment: { flip: true, scaleJitter: [0.9, 1.1] }, fcWidth: 256, rpn: toyRpn, roi: { samplesPerImage: 128, positiveFraction: 0.25 } };
const noJitter = { augment: { flip: true, scaleJitter: [1, 1] } };
const wide = { fcWidth: 1024, rpn: wideRpn, roi: { samplesPerImage: 512, positiveFraction: 0.25 } };
const step = { schedule: { kind: 'step', warmupIterations: 100, warmupRatio: 0.001, milestones: [8, 11], gamma: 0.1 } };
const V = {
  before: before,
  wide: { ...before, ...wide },
  gn: { ...before, norm: 'gn' },
  'gn-step': { ...before, norm: 'gn', ...step },
  'gn-wide': { ...before, norm: 'gn', ...wide },
  'gn-nojit': { ...before, norm: 'gn', ...noJitter },
  'gnws-nojit': { ...before, ...noJitter },
  'gn-nojit-props': { ...before, norm: 'gn', ...noJitter, rpn: wideRpn },
  'gn-nojit-wide': { ...before, norm: 'gn', ...noJitter, ...wide },
  'gn-nojit-lr01': { ...before, norm: 'gn', ...noJitter, optimizer: { ...r.optimizer, lr: 0.01 } },
  'bn-nojit': { ...before, norm: 'bn', ...noJitter },
  shipped: {},
};
if (!V['$v']) { console.error('bench/default-recipe-tune.sh: unknown variant $v (known: ' + Object.keys(V).join(', ') + ')'); process.exit(2); }
require('fs').writeFileSync('$OUT/tune/$v.json', JSON.stringify({ ...r, ...V['$v'], name: 'toy-train-$v' }));
"
  [ "${DRY:-0}" = 1 ] && { echo "wrote $OUT/tune/$v.json"; continue; }
  t0=$(date +%s)
  node dist/cli/smnas.js train --arch "$ARCH" --data "$DATA" --recipe "$OUT/tune/$v.json" --threads "$THREADS" --out "$OUT/tune/run-$v-s$SEED" --json 2>"$OUT/tune/$v-s$SEED.log" | tail -n 1 > "$OUT/tune/$v-s$SEED.json"
  t1=$(date +%s)
  echo "| $v | $SEED | $(stats_cell "$OUT/tune/$v-s$SEED.json") | $((t1 - t0)) |"
done
