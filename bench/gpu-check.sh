#!/usr/bin/env bash
# The prepared GPU check (issue #16): one script that proves the trainer's CUDA path and measures
# it on a real GPU, sized for a borrowed H200 (about 15 minutes of device time in all, 10 minutes a
# command, no network, a fresh bare machine with CUDA's compiler, CMake, ninja and python3 with
# PyTorch 2.11 + torchvision 0.26, but no Node). In under 8 minutes it
#   1. builds smnas-trainer and its unit tests against the machine's PyTorch (Release, ninja, all
#      cores, the GPU's architecture);
#   2. runs the native unit tests, with the CUDA ones (native/tests/test_cuda.cpp: ops against the
#      CPU references on the GPU, bf16/fp16 autocast steps, allocator peak, checkpoint round trip);
#   3. trains ResNet-50-FPN (and the paper's E0) at 800x600 on generated data, fp32 and bf16
#      autocast (E0 also fp16 and GN+WS), images/s over fixed timed iterations and peak GPU memory,
#      against torchvision's fasterrcnn_resnet50_fpn with the same data, batch, precision and settings;
#   4. times batch-1 inference of E0 and ResNet-50-FPN at 800x600 (paper Table 5: ratio 0.56) with
#      the weights the fp32 training runs produced, median and p90;
#   5. reproduces the byte-identical resume check of test/native/train.test.ts with the trainer alone;
#   and writes gpu-check.json + gpu-check.md (+ the log, the build log and the unit-test output) to
#   $OUT if set, else bench/out/gpu-check/. Each phase fails soft: a failure is recorded and the
#   next phase runs; the report is rewritten after every phase, so a run cut short still reports.
#
# Usage
#   bash bench/gpu-check.sh --prepare        HERE (needs node, dist/ and Debian's libstb-dev,
#                                            nlohmann-json3-dev, googletest, and a python with
#                                            Pillow: $PYTHON or /work/torch211/venv/bin/python3):
#                                            writes the git-ignored .gpu-check/ (job files, generated
#                                            data as JPEG, third-party build inputs), ~10 MiB
#   bash bench/gpu-check.sh                  on the GPU machine: the check at full scale on cuda:0
#   bash bench/gpu-check.sh --device cpu --smoke
#                                            the CPU dry run (see bench/gpu/dry-run-cpu.sh, which
#                                            sets up PyTorch 2.11 from PyPI and runs exactly this)
#   Options: --device cuda|cpu (default cuda), --smoke (320x256, a few iterations), --skip-build
#   (reuse $WORK/build), --help.
#   Environment: PYTHON (default python3), WORK (default /tmp/smnas-gpu-check; the build, runs and
#   weights; never in $OUT), OUT (results; default bench/out/gpu-check), JOBS (build parallelism,
#   default nproc), BUDGET_S (start no phase after this many seconds, cut the running one 60 s
#   later; default 420 on cuda, none on cpu), SMNAS_CMAKE_ARGS (extra CMake arguments, e.g. a CUDA toolkit for the dry run).
#
# The device call (the device tool's `run`; .gpu-check is git-ignored, so it must be carried):
#   command:   bash bench/gpu-check.sh
#   carry:     [".gpu-check"]
#   timeout_s: 600
# then read $OUT's gpu-check.md / gpu-check.json, and give the machine back.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PREP="$ROOT/.gpu-check"
START_S=$(date +%s)

usage() { sed -n '2,/^set -euo pipefail/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
say() { printf '[gpu-check +%4ds %s] %s\n' "$(( $(date +%s) - START_S ))" "$(date +%H:%M:%S)" "$*"; }

MODE=run DEVICE=cuda SCALE=full SKIP_BUILD=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prepare) MODE=prepare ;;
    --device) DEVICE="${2:?--device needs cuda or cpu}"; shift ;;
    --device=*) DEVICE="${1#--device=}" ;;
    --smoke) SCALE=smoke ;;
    --skip-build) SKIP_BUILD=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$DEVICE" in cuda|cpu) ;; *) echo "gpu-check: --device must be cuda or cpu" >&2; exit 2 ;; esac

# ---------------------------------------------------------------------------------------------
# --prepare: everything the GPU machine cannot make itself (it has no Node and no registries).
# ---------------------------------------------------------------------------------------------
# The sources the prepared files are made from: a check run on a tree whose sources differ from
# those --prepare saw says so (the jobs may be stale).
inputs_digest() {
  local LC_ALL=C  # the same glob order on every machine
  cat bench/gpu/jobs.ts protocol/*.ts search/layout*.ts datasets/synth/*.ts 2>/dev/null | sha256sum | cut -c1-16
}

pick_python_with_pil() {
  for p in "${PYTHON:-}" /work/torch211/venv/bin/python3 python3 /usr/bin/python3; do
    [ -n "$p" ] && command -v "$p" >/dev/null 2>&1 && "$p" -c 'import PIL' 2>/dev/null && { echo "$p"; return 0; }
  done
  return 1
}

prepare() {
  command -v node >/dev/null || { echo "gpu-check --prepare: needs node (run it on the development machine)" >&2; exit 1; }
  local py
  py="$(pick_python_with_pil)" || { echo "gpu-check --prepare: needs a python with Pillow (for the JPEG copies): set PYTHON" >&2; exit 1; }
  local stb=/usr/include/stb/stb_image.h json=/usr/include/nlohmann/json.hpp gtest=/usr/src/googletest
  for f in "$stb" "$json" "$gtest/CMakeLists.txt"; do
    [ -e "$f" ] || { echo "gpu-check --prepare: $f is missing (apt-get install libstb-dev nlohmann-json3-dev googletest)" >&2; exit 1; }
  done
  say "building dist/ (tsc)"
  node_modules/.bin/tsc -p tsconfig.json
  rm -rf "$PREP"
  mkdir -p "$PREP"
  say "job files, torchvision settings and manifests (bench/gpu/jobs.ts)"
  node dist/bench/gpu/jobs.js "$PREP"
  for scale in full smoke; do
    local spec
    spec="$("$py" -c "import json,sys; m=json.load(open('$PREP/$scale/manifest.json')); print(m['width'], m['height'], m['train'], m['val'], m['classes'])")"
    read -r w h ntrain nval ncls <<<"$spec"
    say "data ($scale): bin/smnas data synth --size ${w}x${h} --train $ntrain --val $nval, then JPEG"
    local tmp="$PREP/$scale/png"
    node dist/cli/smnas.js data synth --out "$tmp" --train "$ntrain" --val "$nval" --size "${w}x${h}" --classes "$ncls" --seed 1 >/dev/null
    # JPEG (quality 90): a noisy 800x600 PNG is ~1.2 MB, its JPEG ~90 kB, so 8x more images fit the
    # 64 MiB that travels; the trainer (stb_image) and torchvision both decode JPEG, as for COCO.
    "$py" - "$tmp" "$PREP/$scale/data" <<'EOF'
import json, os, sys
from PIL import Image
src, dst = sys.argv[1], sys.argv[2]
for split in ("train", "val"):
    os.makedirs(os.path.join(dst, split), exist_ok=True)
    os.makedirs(os.path.join(dst, "annotations"), exist_ok=True)
    ann = json.load(open(os.path.join(src, "annotations", f"instances_{split}.json")))
    for im in ann["images"]:
        jpg = os.path.splitext(im["file_name"])[0] + ".jpg"
        Image.open(os.path.join(src, split, im["file_name"])).convert("RGB").save(os.path.join(dst, split, jpg), quality=90)
        im["file_name"] = jpg
    json.dump(ann, open(os.path.join(dst, "annotations", f"instances_{split}.json"), "w"))
EOF
    rm -rf "$tmp"
    node dist/cli/smnas.js data check "$PREP/$scale/data" >/dev/null 2>&1 || { echo "gpu-check --prepare: data check failed for $PREP/$scale/data" >&2; exit 1; }
  done
  say "third-party build inputs (stb_image, nlohmann/json, GoogleTest sources)"
  local tp="$PREP/third_party"
  mkdir -p "$tp/include/stb" "$tp/googletest"
  cp "$stb" "$tp/include/stb/"
  cp -r /usr/include/nlohmann "$tp/include/"
  cp "$gtest/CMakeLists.txt" "$tp/googletest/"
  cp -r "$gtest/googletest" "$tp/googletest/"
  {
    echo "Prepared by bench/gpu-check.sh --prepare on $(date -u +%Y-%m-%dT%H:%M:%SZ) at commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')."
    echo "third_party: $(dpkg-query -W -f='${Package} ${Version}; ' libstb-dev nlohmann-json3-dev googletest 2>/dev/null || true)"
    echo "Run on the GPU machine: bash bench/gpu-check.sh   (device tool: carry [\".gpu-check\"])"
  } >"$PREP/README.txt"
  inputs_digest >"$PREP/inputs.digest"
  local kib
  kib=$(du -sk "$PREP" | cut -f1)
  say "prepared $PREP: $((kib / 1024)) MiB ($(find "$PREP" -type f | wc -l) files)"
  [ "$kib" -lt $((40 * 1024)) ] || { echo "gpu-check --prepare: $PREP is over 40 MiB; the device tool carries 64 MiB with the tree" >&2; exit 1; }
}

if [ "$MODE" = prepare ]; then
  prepare
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# The check.
# ---------------------------------------------------------------------------------------------
[ -f "$PREP/$SCALE/manifest.json" ] || { echo "gpu-check: $PREP/$SCALE is missing: run 'bash bench/gpu-check.sh --prepare' on the development machine and carry .gpu-check" >&2; exit 1; }
PY="${PYTHON:-python3}"
WORK="${WORK:-/tmp/smnas-gpu-check}"
OUTDIR="${OUT:-$ROOT/bench/out/gpu-check}"
case "$WORK" in "$ROOT"|"$ROOT"/*) echo "gpu-check: WORK must be outside the repository (the device tool would carry it)" >&2; exit 2 ;; esac
JOBS="${JOBS:-$(nproc)}"
# 420 s: a phase starts no later than that and is cut 60 s after it, so the run ends inside 8 minutes
if [ "$DEVICE" = cuda ]; then BUDGET_S="${BUDGET_S:-420}"; else BUDGET_S="${BUDGET_S:-0}"; fi
DATA="$PREP/$SCALE/data"
BUILD="$WORK/build"
BIN="$BUILD/smnas-trainer"
mkdir -p "$OUTDIR" "$WORK"
rm -rf "$WORK/runs" "$WORK/tv" "$WORK/jobs" "$WORK/phases.jsonl" "$WORK/unit.json" "$WORK/resume.json"
mkdir -p "$WORK/runs" "$WORK/tv" "$WORK/jobs"
LOG="$OUTDIR/gpu-check.log"
exec > >(tee "$LOG") 2>&1
export PYTHONUNBUFFERED=1
jq_manifest() { "$PY" -c "import json; print(json.load(open('$PREP/$SCALE/manifest.json'))['$1'])"; }
RESUME_EVERY="$(jq_manifest resumeEvery)"
say "device=$DEVICE scale=$SCALE python=$PY work=$WORK out=$OUTDIR jobs=$JOBS budget=${BUDGET_S}s"
STALE=false
if [ "$(cat "$PREP/inputs.digest" 2>/dev/null)" != "$(inputs_digest)" ]; then
  STALE=true
  say "WARNING: .gpu-check was prepared from other sources (bench/gpu/jobs.ts, protocol/, search/layout*, datasets/synth/): rerun --prepare"
fi
printf '{"device":"%s","mode":"%s","startedAt":"%s","preparedInputsStale":%s}\n' "$DEVICE" "$SCALE" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$STALE" >"$WORK/meta.json"

write_report() {
  "$PY" bench/gpu/report.py report "$WORK" "$PREP/$SCALE" "$OUTDIR" || say "report: failed (see above)"
}

# phase <name> <per-phase limit s> <function> [args]: runs the function in a subshell with errexit,
# records status and seconds, never stops the script. A phase that would start after BUDGET_S is
# skipped; the limit given to the phase is also capped by what is left of the budget.
PHASE_LIMIT=0
phase() {
  local name="$1" limit="$2" fn="$3"
  shift 3
  local now=$(( $(date +%s) - START_S )) status rc=0 t0 note=""
  if [ "$BUDGET_S" -gt 0 ] && [ "$now" -ge "$BUDGET_S" ]; then
    say "SKIP $name: the time budget (${BUDGET_S}s) is spent"
    printf '{"phase":"%s","status":"skipped","seconds":0,"rc":null,"note":"time budget spent"}\n' "$name" >>"$WORK/phases.jsonl"
    return 0
  fi
  if [ "$BUDGET_S" -gt 0 ] && [ "$limit" -gt $(( BUDGET_S + 60 - now )) ]; then limit=$(( BUDGET_S + 60 - now )); fi
  PHASE_LIMIT="$limit"
  say "BEGIN $name (limit ${limit}s)"
  t0=$(date +%s)
  set +e
  ( set -e; "$fn" "$@" )
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then status=ok; elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status=failed note="timed out after ${limit}s"; else status=failed note="exit $rc"; fi
  [ -f "$WORK/phase-note" ] && { note="${note:+$note; }$(tr -d '"\n' <"$WORK/phase-note")"; rm -f "$WORK/phase-note"; }
  printf '{"phase":"%s","status":"%s","seconds":%d,"rc":%d,"note":"%s"}\n' "$name" "$status" "$(( $(date +%s) - t0 ))" "$rc" "$note" >>"$WORK/phases.jsonl"
  say "END $name: $status${note:+ ($note)}"
  write_report
  return 0
}
limited() { timeout --kill-after=10 "$PHASE_LIMIT" "$@"; }

# 0. environment
"$PY" bench/gpu/report.py env "$WORK/env.json" || true
cat "$WORK/env.json" && echo || true
if [ "$DEVICE" = cuda ]; then
  nvidia-smi || say "nvidia-smi failed"
  "$PY" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' || { say "torch sees no CUDA device: the CUDA phases will fail (run with --device cpu for a dry run)"; }
fi

# 1. build against the machine's PyTorch
build() {
  local torch_dir cuda_args=()
  torch_dir="$("$PY" -c 'import torch, os; print(os.path.dirname(torch.__file__))')"
  if [ "$DEVICE" = cuda ]; then
    # TorchConfig needs nvcc; the image has it, maybe outside PATH
    command -v nvcc >/dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"; }
    local cap
    cap="$("$PY" -c 'import torch; p=torch.cuda.get_device_capability(0); print(f"{p[0]}.{p[1]}")' 2>/dev/null || echo 9.0)"
    export TORCH_CUDA_ARCH_LIST="$cap"
    cuda_args=("-DCMAKE_CUDA_ARCHITECTURES=${cap/./}")
    say "CUDA architecture $cap; nvcc: $(command -v nvcc || echo none)"
  fi
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  # Force the carried third-party inputs (what the GPU machine has) even where the system has them.
  # shellcheck disable=SC2086
  cmake -S native -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_PREFIX_PATH=$torch_dir;$torch_dir/share/cmake;$PREP/third_party" \
    -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON \
    "-DSMNAS_GTEST_SOURCE_DIR=$PREP/third_party/googletest" -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
    "${cuda_args[@]}" ${SMNAS_CMAKE_ARGS:-} >"$OUTDIR/build.log" 2>&1 || { tail -n 40 "$OUTDIR/build.log"; return 1; }
  grep -E 'smnas-trainer:|Found Torch|CUDA' "$OUTDIR/build.log" | head -n 8 || true
  limited cmake --build "$BUILD" -j"$JOBS" >>"$OUTDIR/build.log" 2>&1 || { grep -E 'error|Error' "$OUTDIR/build.log" | head -n 40; return 1; }
  if grep -q 'SMNAS_WITH_CUDA' "$BUILD"/CMakeFiles/smnas_torch.dir/flags.make "$BUILD"/build.ninja 2>/dev/null; then
    echo "built with SMNAS_WITH_CUDA" >"$WORK/phase-note"
  fi
  grep -E "^$ROOT/native/.*warning:" "$OUTDIR/build.log" && echo "compiler warnings in native/ (see build.log)" >>"$WORK/phase-note" || true
  ls -la "$BIN"
}
if [ "$SKIP_BUILD" = 1 ] && [ -x "$BIN" ]; then
  say "--skip-build: using $BIN"
  printf '{"phase":"build","status":"skipped","seconds":0,"rc":null,"note":"--skip-build"}\n' >>"$WORK/phases.jsonl"
else
  if [ "$DEVICE" = cuda ]; then phase build 330 build; else phase build 7200 build; fi
fi

# 2. native unit tests (one process: CUDA initialises once; ctest would start one per test)
unit() {
  [ -x "$BUILD/smnas-unit-tests" ] || { echo "no unit-test binary" >"$WORK/phase-note"; return 1; }
  local rc=0
  (cd "$WORK" && limited "$BUILD/smnas-unit-tests" --gtest_output="json:$WORK/unit.json" >"$OUTDIR/unit-tests.log" 2>&1) || rc=$?
  tail -n 4 "$OUTDIR/unit-tests.log"
  grep -E '^\[  (FAILED|SKIPPED) ' "$OUTDIR/unit-tests.log" | head -n 20 || true
  return "$rc"
}
phase unit-tests 120 unit

# 3-5. trainer runs. job <name>: the prepared job with this machine's paths and device.
job_file() {
  local name="$1" dev=cuda:0
  [ "$DEVICE" = cpu ] && dev=cpu
  sed -e "s#@WORK@#$WORK#g" -e "s#@DATA@#$DATA#g" -e "s#\"device\":\"cuda:0\"#\"device\":\"$dev\"#" \
    "$PREP/$SCALE/jobs/$name.json" >"$WORK/jobs/$name.json"
  echo "$WORK/jobs/$name.json"
}
native() {  # native <train|bench> <name>
  local cmd="$1" name="$2" jf rc=0
  [ -x "$BIN" ] || { echo "no trainer binary" >"$WORK/phase-note"; return 1; }
  jf="$(job_file "$name")"
  limited "$BIN" "$cmd" --job "$jf" >"$WORK/runs/$name.out" 2>"$WORK/runs/$name.err" || rc=$?
  grep '"type":"result"\|"type":"error"' "$WORK/runs/$name.out" | cut -c1-400 || tail -n 5 "$WORK/runs/$name.err"
  [ "$rc" -eq 0 ] || { tail -n 5 "$WORK/runs/$name.err"; echo "trainer exit $rc" >"$WORK/phase-note"; }
  return "$rc"
}
torchvision_ref() {  # torchvision_ref <fp32|bf16> [--latency]
  local prec="$1" rc=0
  shift
  local threads=0
  [ "$DEVICE" = cpu ] && threads="$(jq_manifest threads)"
  limited "$PY" bench/gpu/torchvision_ref.py --data "$DATA" --settings "$PREP/$SCALE/torchvision.json" --device "$DEVICE" \
    --precision "$prec" --threads "$threads" "$@" >"$WORK/tv/tv-r50-$prec.json" 2>"$WORK/tv/tv-r50-$prec.err" || rc=$?
  cut -c1-400 "$WORK/tv/tv-r50-$prec.json"
  [ "$rc" -eq 0 ] || { tail -n 8 "$WORK/tv/tv-r50-$prec.err"; echo "torchvision_ref exit $rc" >"$WORK/phase-note"; }
  return "$rc"
}
resume_check() {
  native train resume-a
  native train resume-b
  # resume-c: resume-b's first checkpoint in a fresh folder = a run killed right after it
  mkdir -p "$WORK/runs/resume-c/checkpoints"
  cp "$WORK/runs/resume-b/checkpoints/ckpt-$RESUME_EVERY.pt" "$WORK/runs/resume-c/checkpoints/"
  native train resume-c
  "$PY" bench/gpu/report.py resume "$WORK" "$RESUME_EVERY"
}

# the core comparison first (R50 native vs torchvision, both precisions), then E0, inference,
# resume, and the extra precisions; each native run gets 60-90 s at most on the H200
if [ "$DEVICE" = cuda ]; then T_TRAIN=90 T_TV=120 T_BENCH=60 T_RESUME=120; else T_TRAIN=900 T_TV=900 T_BENCH=600 T_RESUME=1200; fi
phase train-r50-fp32 "$T_TRAIN" native train train-r50-fp32
phase train-r50-bf16 "$T_TRAIN" native train train-r50-bf16
phase tv-r50-fp32 "$T_TV" torchvision_ref fp32 --latency
phase tv-r50-bf16 "$T_TV" torchvision_ref bf16
phase train-e0-fp32 "$T_TRAIN" native train train-e0-fp32
phase train-e0-bf16 "$T_TRAIN" native train train-e0-bf16
phase bench-r50 "$T_BENCH" native bench bench-r50
phase bench-e0 "$T_BENCH" native bench bench-e0
phase resume "$T_RESUME" resume_check
if [ "$DEVICE" = cuda ]; then
  phase train-e0-fp16 "$T_TRAIN" native train train-e0-fp16
else
  printf '{"phase":"train-e0-fp16","status":"skipped","seconds":0,"rc":null,"note":"fp16 autocast needs CUDA"}\n' >>"$WORK/phases.jsonl"
fi
phase train-e0-gnws-bf16 "$T_TRAIN" native train train-e0-gnws-bf16

write_report
failed=$(grep -c '"status":"failed"' "$WORK/phases.jsonl" || true)
cut=$(grep -c '"note":"time budget spent"' "$WORK/phases.jsonl" || true)
say "done in $(( $(date +%s) - START_S ))s: $failed phase(s) failed, $cut skipped for time; report: $OUTDIR/gpu-check.md"
cat "$OUTDIR/gpu-check.md"
[ "$failed" -eq 0 ] && [ "$cut" -eq 0 ]
