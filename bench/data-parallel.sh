#!/usr/bin/env bash
# Data-parallel scaling on this host's CPU: the same detection training (global batch 8, same data
# order, same iterations) as 1 process with 2 threads and as 2 processes (Gloo) with 1 thread each,
# so both use the same cores. Prints each run's images/s (the trainer's result) and the ratio.
# Usage: bench/data-parallel.sh [iterations=30]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IT="${1:-30}"
WORK="$(mktemp -d /tmp/smnas-dp-bench-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
SMNAS=(node "$ROOT/dist/cli/smnas.js")
ARCH='128x128/basicblock_16_1-21-21-21/fpn(P1-P4,c=32)/rpn/2fc'
"${SMNAS[@]}" data synth --kind detection --format coco --out "$WORK/data" --train 240 --val 16 --size 128 --seed 1 >/dev/null
# toy-train as it was when BENCHMARKS.md's figures were measured (bench/toy-train-history.js: GN+WS, scale jitter 0.9-1.1)
for B in 8 4; do
  node -e "const r={...require('$ROOT/bench/toy-train-history.js').beforeSession8,batchSize:$B,workers:1};process.stdout.write(JSON.stringify(r))" > "$WORK/recipe-b$B.json"
done
run() { # label nproc batch threads
  "${SMNAS[@]}" train --arch "$ARCH" --data "$WORK/data" --recipe "$WORK/recipe-b$3.json" --max-iterations "$IT" \
    --nproc "$2" --threads "$4" --out "$WORK/$1" --json 2>/dev/null | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);console.log(r.imagesPerSec.toFixed(2))})"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
one=$(run one 1 8 2)
two=$(run two 2 4 1)
echo "1 process  x batch 8, 2 threads : $one images/s"
echo "2 processes x batch 4, 1 thread : $two images/s"
node -e "console.log('ratio 2 processes / 1 process: ' + ($two / $one).toFixed(2))"
