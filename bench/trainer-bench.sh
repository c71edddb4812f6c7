#!/usr/bin/env bash
# Native trainer vs torchvision's Python Faster R-CNN, same architecture, data, batch, threads and
# input size, measured in the same run (results go to BENCHMARKS.md, section "Native trainer").
#   bash bench/trainer-bench.sh [iterations=40] [threads=2] [rounds=2]
# - No augmentation on either side: torchvision's script neither flips nor jitters (jitter up to
#   1.1x would pad the 128 px batches to 160 px, 1.56x the pixels).
# - Native runs with GroupNorm (torchvision's norm: the like-for-like comparison) and with GN +
#   Weight Standardization (the quality run's norm).
# - torchvision runs with its defaults and with the environment the native trainer sets for itself
#   (native/src/main.cpp: a short OpenMP spin, OpenBLAS core type from the CPU flags, one BLAS
#   thread), so the ratio shows what the trainer's own code gains beyond those settings.
# - The shared VM's speed drifts by up to ~30 % over minutes, so the four runs alternate for
#   `rounds` rounds and each side reports its best round.
# BACKBONE=mobilenet_v2 compares the MobileNetV2-FPN detector with torchvision's Faster R-CNN on
# torchvision's mobilenet_v2 features (same stage outputs, GN groups as the trainer's rule).
# Needs native/build/smnas-trainer, dist/ (tsc) and Debian's /usr/bin/python3 with torchvision
# (scripts/setup.sh installs python3-torchvision; checked below).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ITERS="${1:-40}"; THREADS="${2:-2}"; ROUNDS="${3:-2}"; BATCH=4; FC=256; ROIS=128
BACKBONE="${BACKBONE:-resnet18}"
case "$BACKBONE" in resnet18|mobilenet_v2) ;; *) echo "BACKBONE must be resnet18 or mobilenet_v2, got '$BACKBONE'" >&2; exit 2 ;; esac
/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null || { echo "bench/trainer-bench.sh: the reference needs Debian's python3-torchvision (bash scripts/setup.sh installs it)" >&2; exit 1; }
[ -x native/build/smnas-trainer ] && [ -f dist/cli/smnas.js ] || { echo "bench/trainer-bench.sh: build first (bash scripts/setup.sh)" >&2; exit 1; }
OUT="$ROOT/bench/out/trainer$([ "$BACKBONE" = resnet18 ] || echo "-$BACKBONE")"; mkdir -p "$OUT"
DATA="$ROOT/bench/out/trainer/shapes"
[ -f "$DATA/.complete" ] || { node dist/cli/smnas.js data synth --out "$DATA" --train 400 --val 100 --size 128 --seed 1 >/dev/null && touch "$DATA/.complete"; }
ARCH="128x128/$BACKBONE/fpn(P1-P4,c=64)/rpn/2fc"
for NORM in gn gn+ws; do
  TAG="${NORM/+/}"
  node -e "
const { buildDetectionJob } = require('./dist/protocol/job-builder');
const { getDetectionRecipe } = require('./dist/protocol/recipes');
const r = getDetectionRecipe('toy-stage-two');
r.norm = '$NORM'; r.augment = { flip: false, scaleJitter: [1, 1] };
r.batchSize = $BATCH; r.fcWidth = $FC; r.roi.samplesPerImage = $ROIS; r.maxIterations = $ITERS; r.workers = 1;
const base = { arch: '$ARCH', recipe: r, numClasses: 4, dataRoot: '$DATA', threads: $THREADS, seed: 0 };
require('fs').writeFileSync('$OUT/train-$TAG.json', JSON.stringify(buildDetectionJob({ ...base, command: 'train', outDir: '$OUT/train-$TAG' })));
require('fs').writeFileSync('$OUT/bench-$TAG.json', JSON.stringify(buildDetectionJob({ ...base, command: 'bench', outDir: '$OUT/bench-$TAG', bench: { warmup: 5, iterations: 30 } })));
"
done
CORETYPE=""
if grep -qw avx512bw /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo; then CORETYPE=SkylakeX
elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then CORETYPE=Haswell; fi
native() {  # native <tag> <round>
  rm -rf "$OUT/train-$1"
  native/build/smnas-trainer train --job "$OUT/train-$1.json" 2>/dev/null | grep '"type":"result"' > "$OUT/r$2-native-train-$1.json"
  native/build/smnas-trainer bench --job "$OUT/bench-$1.json" 2>/dev/null | grep '"type":"result"' > "$OUT/r$2-native-bench-$1.json"
}
torchvision() {  # torchvision <defaults|env> <round>
  if [ "$1" = env ]; then
    env GOMP_SPINCOUNT=10000 OPENBLAS_NUM_THREADS=1 ${CORETYPE:+OPENBLAS_CORETYPE=$CORETYPE} \
      /usr/bin/python3 bench/trainer-torchvision.py "$DATA" "$ITERS" "$BATCH" "$THREADS" "$FC" "$ROIS" "$BACKBONE" > "$OUT/r$2-torchvision-$1.json"
  else
    /usr/bin/python3 bench/trainer-torchvision.py "$DATA" "$ITERS" "$BATCH" "$THREADS" "$FC" "$ROIS" "$BACKBONE" > "$OUT/r$2-torchvision-$1.json"
  fi
}
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS: native GN, torchvision (defaults), torchvision (trainer env, OPENBLAS_CORETYPE=${CORETYPE:-unset}), native GN+WS; $ITERS training iterations each (batch $BATCH, $THREADS threads), then 30 batch-1 forwards" >&2
  native gn "$r"; torchvision defaults "$r"; torchvision env "$r"; native gnws "$r"
done
node -e "
const fs = require('fs');
const rounds = Array.from({ length: $ROUNDS }, (_, i) => i + 1);
const read = (f) => rounds.map((r) => JSON.parse(fs.readFileSync('$OUT/r' + r + '-' + f, 'utf8')));
const best = (xs, get) => Math.max(...xs.map(get)), least = (xs, get) => Math.min(...xs.map(get));
const sides = {
  gn: { train: read('native-train-gn.json'), bench: read('native-bench-gn.json').map((x) => x.bench) },
  ws: { train: read('native-train-gnws.json'), bench: read('native-bench-gnws.json').map((x) => x.bench) },
  tv: read('torchvision-defaults.json'), te: read('torchvision-env.json'),
};
const ips = { gn: best(sides.gn.train, (x) => x.imagesPerSec), ws: best(sides.ws.train, (x) => x.imagesPerSec),
  tv: best(sides.tv, (x) => x.trainImagesPerSec), te: best(sides.te, (x) => x.trainImagesPerSec) };
const ms = { gn: least(sides.gn.bench, (x) => x.medianMs), ws: least(sides.ws.bench, (x) => x.medianMs),
  tv: least(sides.tv, (x) => x.medianMs), te: least(sides.te, (x) => x.medianMs) };
const all = (xs, get) => xs.map((x) => get(x).toFixed(2)).join(', ');
const f = (x) => x.toFixed(2);
console.log('| figure (best of $ROUNDS rounds; all rounds in brackets) | native GN | native GN+WS | torchvision GN, defaults | torchvision GN, trainer env | native GN / torchvision (defaults; trainer env) |');
console.log('|---|---|---|---|---|---|');
console.log('| training images/s (whole run incl. loading) | ' + f(ips.gn) + ' [' + all(sides.gn.train, (x) => x.imagesPerSec) + '] | ' + f(ips.ws) + ' [' + all(sides.ws.train, (x) => x.imagesPerSec) + '] | ' +
  f(ips.tv) + ' [' + all(sides.tv, (x) => x.trainImagesPerSec) + '] | ' + f(ips.te) + ' [' + all(sides.te, (x) => x.trainImagesPerSec) + '] | ' +
  f(ips.gn / ips.tv) + 'x; ' + f(ips.gn / ips.te) + 'x |');
console.log('| batch-1 inference, median ms | ' + f(ms.gn) + ' [' + all(sides.gn.bench, (x) => x.medianMs) + '] | ' + f(ms.ws) + ' [' + all(sides.ws.bench, (x) => x.medianMs) + '] | ' +
  f(ms.tv) + ' [' + all(sides.tv, (x) => x.medianMs) + '] | ' + f(ms.te) + ' [' + all(sides.te, (x) => x.medianMs) + '] | ' +
  f(ms.tv / ms.gn) + 'x; ' + f(ms.te / ms.gn) + 'x faster |');
console.log('| peak RSS MB (train / bench) | ' + f(best(sides.gn.train, (x) => x.peakMemoryMB)) + ' / ' + f(best(sides.gn.bench, (x) => x.peakMemoryMB)) + ' | ' +
  f(best(sides.ws.train, (x) => x.peakMemoryMB)) + ' / ' + f(best(sides.ws.bench, (x) => x.peakMemoryMB)) + ' | ' +
  f(best(sides.tv, (x) => x.peakMemoryMB)) + ' (train+bench) | ' + f(best(sides.te, (x) => x.peakMemoryMB)) + ' (train+bench) | |');
"
