#!/usr/bin/env bash
# Native trainer vs torchvision's Python Faster R-CNN, same architecture, data, batch, threads and
# input size, measured in the same run (results go to BENCHMARKS.md, section "Native trainer").
#   bash bench/trainer-bench.sh [iterations=40] [threads=2]
# Needs native/build/smnas-trainer, dist/ (tsc) and Debian's /usr/bin/python3 with torchvision.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ITERS="${1:-40}"; THREADS="${2:-2}"; BATCH=4; FC=256; ROIS=128
OUT="$ROOT/bench/out/trainer"; mkdir -p "$OUT"
DATA="$OUT/shapes"
[ -f "$DATA/.complete" ] || { node dist/cli/smnas.js data synth --out "$DATA" --train 400 --val 100 --size 128 --seed 1 >/dev/null && touch "$DATA/.complete"; }
ARCH='128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc'
node -e "
const { buildDetectionJob } = require('./dist/protocol/job-builder');
const { getDetectionRecipe } = require('./dist/protocol/recipes');
const r = getDetectionRecipe('toy-stage-two');
r.batchSize = $BATCH; r.fcWidth = $FC; r.roi.samplesPerImage = $ROIS; r.maxIterations = $ITERS; r.workers = 1;
const base = { arch: '$ARCH', recipe: r, numClasses: 4, dataRoot: '$DATA', threads: $THREADS, seed: 0 };
require('fs').writeFileSync('$OUT/train.json', JSON.stringify(buildDetectionJob({ ...base, command: 'train', outDir: '$OUT/train' })));
require('fs').writeFileSync('$OUT/bench.json', JSON.stringify(buildDetectionJob({ ...base, command: 'bench', outDir: '$OUT/bench', bench: { warmup: 5, iterations: 30 } })));
"
rm -rf "$OUT/train"
echo "native trainer: $ITERS training iterations (batch $BATCH, $THREADS threads), then 30 batch-1 forwards" >&2
native/build/smnas-trainer train --job "$OUT/train.json" 2>/dev/null | grep '"type":"result"' > "$OUT/native-train.json"
native/build/smnas-trainer bench --job "$OUT/bench.json" 2>/dev/null | grep '"type":"result"' > "$OUT/native-bench.json"
echo "torchvision: the same" >&2
/usr/bin/python3 bench/trainer-torchvision.py "$DATA" "$ITERS" "$BATCH" "$THREADS" "$FC" "$ROIS" > "$OUT/torchvision.json"
node -e "
const n = JSON.parse(require('fs').readFileSync('$OUT/native-train.json', 'utf8'));
const b = JSON.parse(require('fs').readFileSync('$OUT/native-bench.json', 'utf8')).bench;
const t = JSON.parse(require('fs').readFileSync('$OUT/torchvision.json', 'utf8'));
const f = (x) => x.toFixed(2);
console.log('| figure | native | torchvision | ratio |');
console.log('|---|---|---|---|');
console.log('| training images/s (whole run incl. loading) | ' + f(n.imagesPerSec) + ' | ' + f(t.trainImagesPerSec) + ' | ' + f(n.imagesPerSec / t.trainImagesPerSec) + 'x |');
console.log('| batch-1 inference median ms | ' + f(b.medianMs) + ' (p10 ' + f(b.p10Ms) + ', p90 ' + f(b.p90Ms) + ') | ' + f(t.medianMs) + ' | ' + f(t.medianMs / b.medianMs) + 'x faster |');
console.log('| peak RSS MB (train / bench) | ' + f(n.peakMemoryMB) + ' / ' + f(b.peakMemoryMB) + ' | ' + f(t.peakMemoryMB) + ' (train+bench) | |');
"
