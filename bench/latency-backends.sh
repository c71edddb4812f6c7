#!/usr/bin/env bash
# CPU latency of onnxruntime-node against the native libtorch trainer (BENCHMARKS.md "Latency
# backends"): the same trained weights, the same latency protocol (a seeded sample of validation
# images, batch 1, post-processing included, median of rounds), the same threads, in the same run,
# for an E0-like model and a ResNet-50-FPN model at two input sizes each. The models are trained for
# a few iterations only (the weights must exist for both backends; detections per image are printed
# beside each figure, since post-processing cost follows them).
#   bash bench/latency-backends.sh [threads=2] [sample=8] [rounds=5]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
THREADS="${1:-2}"; SAMPLE="${2:-8}"; ROUNDS="${3:-5}"
[ -x native/build/smnas-trainer ] && [ -f dist/cli/smnas.js ] || { echo "bench/latency-backends.sh: build first (bash scripts/setup.sh)" >&2; exit 1; }
OUT="$ROOT/bench/out/latency-backends"; mkdir -p "$OUT"
DATA="$OUT/shapes"
[ -f "$DATA/.complete" ] || { node dist/cli/smnas.js data synth --out "$DATA" --train 16 --val 16 --size 512 --seed 3 --classes 4 >/dev/null && touch "$DATA/.complete"; }
MODELS=(
  "E0-like 320|320x320/basicblock_32_11-21-21-21/fpn(P2-P5,c=128)/rpn/2fc"
  "E0-like 512|512x512/basicblock_32_11-21-21-21/fpn(P2-P5,c=128)/rpn/2fc"
  "ResNet-50-FPN 320|320x320/resnet50/fpn(P2-P5,c=256)/rpn/2fc"
  "ResNet-50-FPN 512|512x512/resnet50/fpn(P2-P5,c=256)/rpn/2fc"
)
echo "| model | input | native median ms (p10-p90) | onnxruntime median ms (p10-p90) | onnxruntime / native | detections per image (native / onnxruntime) |"
echo "|---|---|---|---|---|---|"
for m in "${MODELS[@]}"; do
  name="${m%%|*}"; arch="${m#*|}"
  dir="$OUT/$(echo "$name" | tr ' ' '-')"
  if [ ! -f "$dir/weights" ]; then
    node dist/cli/smnas.js train --arch "$arch" --data "$DATA" --recipe toy-final --max-iterations 4 --threads "$THREADS" --out "$dir" --json > "$dir.train.json" 2> "$dir.train.log"
  fi
  common=(--arch "$arch" --classes 4 --recipe toy-final --data "$DATA" --sample "$SAMPLE" --rounds "$ROUNDS" --warmup 2 --threads "$THREADS" --json)
  node dist/cli/smnas.js bench "${common[@]}" --weights "$dir/weights" > "$dir.native.json"
  node dist/cli/smnas.js bench "${common[@]}" --backend onnxruntime --weights "$dir" > "$dir.onnx.json"
  node -e "
const n = JSON.parse(require('fs').readFileSync('$dir.native.json', 'utf8'));
const o = JSON.parse(require('fs').readFileSync('$dir.onnx.json', 'utf8'));
const f = (x) => x.toFixed(1);
console.log('| $name | ' + '$arch'.split('/')[0] + ' | ' + f(n.medianMs) + ' (' + f(n.p10Ms) + '-' + f(n.p90Ms) + ') | ' + f(o.medianMs) + ' (' + f(o.p10Ms) + '-' + f(o.p90Ms) + ') | ' + (o.medianMs / n.medianMs).toFixed(2) + ' | ' + n.detectionsPerImage.toFixed(1) + ' / ' + o.detectionsPerImage.toFixed(1) + ' |');
"
done
