#!/usr/bin/env bash
# How `toy-train` (the default recipe, `bin/smnas train --recipe toy`) was chosen (BENCHMARKS.md,
# "Default recipe"): variants of it trained on one generated data set (the tuning seed is 1; seeds 2
# and 3 are for checking, with bench/default-recipe.sh against torchvision), 12 epochs each,
# 128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc, evaluated by the project's COCO evaluator.
#   bash bench/default-recipe-tune.sh [seed=1] [threads=1] [variant ...]
# (environment: ARCH, another architecture; TAG, a suffix for its output names, e.g. TAG=-c256;
# TRAIN_SEED, the trainer's --seed (default 0): the run's name gets -t<seed>)
# Variants are changes to toy-train as session 8 shipped it (`gn-nojit`: GN, no scale jitter, SGD lr
# 0.02, cosine, warm-up max(100, 10 %), batch 4, flips, 256-wide FC, 128 RoIs of which a quarter
# positive, 600/300 training proposals; written out in bench/toy-train-history.js so that they stay
# what was measured):
#   session 8: before (GN+WS, scale jitter 0.9-1.1: toy-train until session 8) | wide (that with
#   torchvision's sampling and head width: 1024-wide FC, 512 RoIs, 256 RPN samples, 2000 training /
#   1000 test proposals) | gn, gn-step (step x0.1 at 8, 11), gn-wide (`before` with GN, ...) |
#   gn-nojit | gnws-nojit | gn-nojit-props (torchvision's RPN sampling and proposals only) |
#   gn-nojit-wide | gn-nojit-lr01 (lr 0.01) | bn-nojit (BN)
#   session 9: b2 (batch 2, lr 0.01) | b2-lr02 | lr04 | roi-pos05 (half the RoIs positive) |
#   tv-recipe (torchvision's recipe knobs: BN, step x0.1 at 8 and 11 after a 100-iteration
#   warm-up, no clipping, weight decay on norms and biases) | wu300 (300-iteration warm-up) |
#   wu300-lr04 | wu300-pos05 (toy-train since session 9) | wu500-pos05 | wu300-pos05-r256 (256 RoIs)
#   | wu300-pos05-bn | wu300-pos05-lr04
#   session 10: wu300-pos05-tvsizes (torchvision's head width and sampling sizes: with
#   ARCH='128x128/resnet18/fpn(P1-P4,c=256)/rpn/2fc', torchvision's default model)
#   session 11, from session 10's toy-train (wu300-pos05; bench/toy-train-history.js session10):
#   s10 (it, unchanged) | tv-init (torchvision's FPN and box-head initialisation, recipe initScheme) |
#   tv-init-minpos0 (that and the RPN's min_pos_iou 0, torchvision's low-quality matching: toy-train
#   since session 11)
#   session 12, from session 11's toy-train: s11-bn (BN: toy-train since session 13) | s11-props
#   (torchvision's RPN samples and proposal counts)
#   shipped: toy-train as it is now
# Variants run one after another; start several calls to use more cores. Output:
# bench/out/default-recipe/tune/<variant>-s<seed>.{json,log} and a table line per variant.
# DRY=1 only writes the variants' recipe files (bench/out/default-recipe/tune/<variant>.json).
# the body is one block, read whole before it runs: editing the file while it runs (hours here) cannot
# make bash execute a shifted fragment of it
{
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
ARCH="${ARCH:-128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc}"; TAG="${TAG:-}"
echo "| variant | data seed | AP50 / AP / AP75 / AR100 | wall s ($THREADS threads) |"
echo "|---|---|---|---|"
for v in "${VARIANTS[@]}"; do
  node -e "
const r = require('./dist/protocol/recipes.js').getDetectionRecipe('toy-train');
// toy-train as session 8 shipped it (bench/toy-train-history.js): the base of every variant but
// 'shipped' (toy-train as it is now), so that the variants stay what was measured
const { session8: s8, beforeSession8, session10: s10 } = require('./bench/toy-train-history.js');
const toyRpn = s8.rpn;
const wideRpn = { ...toyRpn, samplesPerImage: 256, trainPreNms: 2000, trainPostNms: 2000, testPreNms: 1000, testPostNms: 1000 };
const before = { norm: beforeSession8.norm, augment: beforeSession8.augment };
const wide = { fcWidth: 1024, rpn: wideRpn, roi: { samplesPerImage: 512, positiveFraction: 0.25 } };
// session 11's toy-train (variant tv-init-minpos0)
const s11 = { ...s10, initScheme: 'torchvision', rpn: { ...s10.rpn, minPosIou: 0 } };
const step = { schedule: { kind: 'step', warmupIterations: 100, warmupRatio: 0.001, milestones: [8, 11], gamma: 0.1 } };
const wu = (n) => ({ schedule: { ...s8.schedule, warmupIterations: n } });
const lr = (x) => ({ optimizer: { ...s8.optimizer, lr: x } });
const pos05 = { roi: { ...s8.roi, positiveFraction: 0.5 } };
const V = {
  // session 8, from 'before' (toy-train until session 8)
  before: before,
  wide: { ...before, ...wide },
  gn: { ...before, norm: 'gn' },
  'gn-step': { ...before, norm: 'gn', ...step },
  'gn-wide': { ...before, norm: 'gn', ...wide },
  'gn-nojit': {},
  'gnws-nojit': { norm: 'gn+ws' },
  'gn-nojit-props': { rpn: wideRpn },
  'gn-nojit-wide': { ...wide },
  'gn-nojit-lr01': { ...lr(0.01) },
  'bn-nojit': { norm: 'bn' },
  // session 9, from session 8's toy-train ('gn-nojit')
  b2: { batchSize: 2, ...lr(0.01) },
  'b2-lr02': { batchSize: 2 },
  lr04: { ...lr(0.04) },
  'roi-pos05': { ...pos05 },
  'tv-recipe': { norm: 'bn', ...step, optimizer: { ...s8.optimizer, noDecayOnNormAndBias: false, clipGradNorm: 0 } },
  wu300: { ...wu(300) },
  'wu300-lr04': { ...wu(300), ...lr(0.04) },
  'wu300-pos05': { ...wu(300), ...pos05 },
  'wu500-pos05': { ...wu(500), ...pos05 },
  'wu300-pos05-r256': { ...wu(300), roi: { samplesPerImage: 256, positiveFraction: 0.5 } },
  'wu300-pos05-bn': { norm: 'bn', ...wu(300), ...pos05 },
  'wu300-pos05-lr04': { ...wu(300), ...pos05, ...lr(0.04) },
  // session 10: toy-train's recipe with the sizes torchvision's FasterRCNN sets in its constructor
  // (1024-wide FC, 256 RPN samples, 2000 / 1000 proposals, 512 RoIs), the positive fractions
  // toy-train's; with ARCH at FPN width 256 this is torchvision's default model
  'wu300-pos05-tvsizes': { ...wu(300), ...wide, roi: { ...wide.roi, positiveFraction: 0.5 } },
  // session 11, from session 10's toy-train (s10 = wu300-pos05): torchvision's initialisation of the
  // FPN and box head, and its RPN matcher (every gt's best anchors positive at any overlap)
  s10: { ...s10 },
  'tv-init': { ...s10, initScheme: 'torchvision' },
  'tv-init-minpos0': { ...s11 },
  // session 12, from session 11's toy-train (s11 = tv-init-minpos0): BN as torchvision trains it, and
  // torchvision's RPN sampling and proposal counts (256 samples, 2000 / 1000 proposals)
  's11-bn': { ...s11, norm: 'bn' },
  's11-props': { ...s11, rpn: { ...wideRpn, minPosIou: 0 } },
};
if (!V['$v'] && '$v' !== 'shipped') { console.error('bench/default-recipe-tune.sh: unknown variant $v (known: shipped, ' + Object.keys(V).join(', ') + ')'); process.exit(2); }
require('fs').writeFileSync('$OUT/tune/$v.json', JSON.stringify('$v' === 'shipped' ? { ...r, name: 'toy-train-shipped' } : { ...s8, ...V['$v'], name: 'toy-train-$v' }));
"
  [ "${DRY:-0}" = 1 ] && { echo "wrote $OUT/tune/$v.json"; continue; }
  t0=$(date +%s)
  run="$v$TAG-s$SEED"; [ -z "${TRAIN_SEED:-}" ] || run="$run-t$TRAIN_SEED"
  node dist/cli/smnas.js train --arch "$ARCH" --data "$DATA" --recipe "$OUT/tune/$v.json" --threads "$THREADS" --seed "${TRAIN_SEED:-0}" --out "$OUT/tune/run-$run" --json 2>"$OUT/tune/$run.log" | tail -n 1 > "$OUT/tune/$run.json"
  t1=$(date +%s)
  echo "| $v$TAG${TRAIN_SEED:+ (--seed $TRAIN_SEED)} | $SEED | $(stats_cell "$OUT/tune/$run.json") | $((t1 - t0)) |"
done
exit
}
