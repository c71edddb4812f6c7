#!/usr/bin/env bash
# The issue's quality run (defined in bench/quality-job.ts, shared with test/native/quality.test.ts):
# 128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc with GN+WS from scratch, 10 epochs on 400 generated
# 128x128 shapes images (batch 4, 256-wide FC, 128 RoIs per image, like the torchvision
# calibration run), evaluated on 100 val images. Prints the result message.
#   bash bench/trainer-quality.sh [epochs=10] [threads=2] [arch=resnet18 FPN 2fc] [warm-up iterations=100]
# e.g. the GA-RPN and MobileNetV2 runs of BENCHMARKS.md (the GA-RPN's test warms up over 500:
# QUALITY_GA_RPN_WARMUP in bench/quality-job.ts):
#   bash bench/trainer-quality.sh 10 2 '128x128/resnet18/fpn(P1-P4,c=64)/ga-rpn/2fc' 500
#   bash bench/trainer-quality.sh 10 2 '128x128/mobilenet_v2/fpn(P1-P4,c=64)/rpn/2fc'
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EPOCHS="${1:-10}"; THREADS="${2:-2}"; ARCH="${3:-}"; WARMUP="${4:-100}"
OUT="$ROOT/bench/out/trainer-quality${ARCH:+-$(printf '%s' "$ARCH" | tr -c 'A-Za-z0-9_-' '_')}"; mkdir -p "$OUT"
DATA="$ROOT/bench/out/trainer/shapes"
[ -f "$DATA/.complete" ] || { node dist/cli/smnas.js data synth --out "$DATA" --train 400 --val 100 --size 128 --seed 1 >/dev/null && touch "$DATA/.complete"; }
QUALITY_ARCH="$ARCH" node -e "
const { qualityRunJob } = require('./dist/bench/quality-job');
const job = qualityRunJob({ dataRoot: '$DATA', outDir: '$OUT/run', epochs: $EPOCHS, threads: $THREADS, evaluator: [process.execPath, 'dist/cli/smnas.js', 'eval'], arch: process.env.QUALITY_ARCH || undefined, warmupIterations: $WARMUP });
require('fs').writeFileSync('$OUT/job.json', JSON.stringify(job));
"
rm -rf "$OUT/run"
/usr/bin/time -f "wall %e s, user %U s, max RSS %M KB" native/build/smnas-trainer train --job "$OUT/job.json" 2> "$OUT/stderr.log" | grep '"type":"result"' | tee "$OUT/result.json"
tail -1 "$OUT/stderr.log"
