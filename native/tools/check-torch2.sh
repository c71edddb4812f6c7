#!/usr/bin/env bash
# PyTorch 2.x build check of native/ on a machine WITHOUT a GPU (not part of CI: it downloads
# about 2.5 GB of wheels from PyPI). It
#   1. downloads the newest (or $TORCH_SPEC) torch wheel with `pip download --no-deps` and unpacks
#      its libtorch (include/, lib/, share/cmake) into $WORK/site;
#   2. downloads the CUDA toolkit wheels the wheel's METADATA pins (cuda-toolkit[...] extras:
#      nvcc, cudart, cublas, ...) and the runtime libraries libtorch_cuda.so needs (cuDNN, NCCL,
#      cuSPARSELt, NVSHMEM, cuFile), and assembles a toolkit root in $WORK/cudasite/nvidia/cu13
#      (the wheels' own layout) with lib*.so links and a link-only libcuda.so stub (no driver here);
#   3. configures native/ with the real CMake build against that libtorch (TorchConfig with CUDA,
#      so SMNAS_WITH_CUDA and the c10/cuda allocator code are compiled) in $WORK/build, -j1;
#   4. runs on the CPU with the 2.x build: the unit tests (ctest), the describe test of the jest
#      suite (parameter counts = the cost model), and a short train + bench with bf16 autocast.
# Usage: native/tools/check-torch2.sh            (WORK=/work/torch2 by default; never inside the repo)
#        WORK=/tmp/t2 TORCH_SPEC='torch==2.6.0' SKIP_RUN=1 native/tools/check-torch2.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${WORK:-/work/torch2}"
TORCH_SPEC="${TORCH_SPEC:-torch}"
JOBS="${JOBS:-1}"
PY="${PY:-python3}"
say() { printf '[check-torch2] %s\n' "$*" >&2; }
case "$WORK" in "$ROOT"|"$ROOT"/*) say "WORK must be outside the repository"; exit 2 ;; esac
mkdir -p "$WORK"
cd "$WORK"

[ -x venv/bin/pip ] || "$PY" -m venv venv
PIP="venv/bin/pip"

# 1. torch wheel -> site/torch/{include,lib,share}
if ! ls wheels/torch-*.whl >/dev/null 2>&1; then
  say "downloading $TORCH_SPEC (no dependencies)"
  $PIP download -q --no-deps -d wheels "$TORCH_SPEC"
fi
WHEEL="$(ls wheels/torch-*.whl | head -n 1)"
if [ ! -f site/torch/share/cmake/Torch/TorchConfig.cmake ]; then
  say "unpacking libtorch from $WHEEL"
  rm -rf site && mkdir site
  (cd site && unzip -q "../$WHEEL" 'torch/include/*' 'torch/lib/*' 'torch/share/*' 'torch/version.py' '*.dist-info/METADATA')
fi
TORCH_ROOT="$WORK/site/torch"
say "torch $(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$TORCH_ROOT/version.py")"
META="$(ls site/*.dist-info/METADATA)"
CUDA_VER="$(sed -n "s/^cuda: Optional\[str\] = '\(.*\)'/\1/p" "$TORCH_ROOT/version.py")"

if [ -n "$CUDA_VER" ]; then
  # 2. CUDA toolkit and runtime libraries from the wheel's own pins
  TOOLKIT_PIN="$(sed -n 's/^Requires-Dist: \(cuda-toolkit\)\[[^]]*\]\(==[0-9.]*\).*/\1\2/p' "$META" | head -n 1)"
  RUNTIME_PINS=($(sed -n 's/^Requires-Dist: \(nvidia-[a-z0-9-]*==[0-9.]*\).*/\1/p' "$META"))
  [ -n "$TOOLKIT_PIN" ] || { say "no cuda-toolkit pin in $META (an older wheel: pass CUDA_HOME of a real toolkit)"; exit 1; }
  if [ ! -d cudawheels ]; then
    say "downloading $TOOLKIT_PIN (nvcc, cudart, cublas, ...)"
    $PIP download -q -d cudawheels "${TOOLKIT_PIN/==/[cublas,cudart,cufft,curand,nvcc,nvrtc,cupti,nvtx,nvjitlink,cusparse,cusolver,crt,cufile]==}"
  fi
  if [ ! -d cudawheels2 ]; then
    say "downloading runtime libraries: ${RUNTIME_PINS[*]}"
    $PIP download -q --no-deps -d cudawheels2 "${RUNTIME_PINS[@]}"
  fi
  if [ ! -d cudasite ]; then
    mkdir -p cudasite
    for w in cudawheels/*.whl cudawheels2/*.whl; do unzip -q -o "$w" -d cudasite; done
  fi
  CUDA_ROOT="$(dirname "$(dirname "$(ls cudasite/nvidia/*/bin/nvcc | head -n 1)")")"
  CUDA_ROOT="$WORK/$CUDA_ROOT"
  chmod +x "$CUDA_ROOT"/bin/* "$CUDA_ROOT"/nvvm/bin/* 2>/dev/null || true
  (cd "$CUDA_ROOT/lib" && for f in *.so.*; do b="${f%%.so.*}.so"; [ -e "$b" ] || ln -s "$f" "$b"; done)
  if [ ! -f "$CUDA_ROOT/lib/stubs/libcuda.so" ]; then
    # link-time stand-in for the driver library (CUDA::cuda_driver); nothing here calls it
    mkdir -p "$CUDA_ROOT/lib/stubs"
    echo 'void smnas_libcuda_link_stub(void) {}' > "$WORK/libcuda-stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$CUDA_ROOT/lib/stubs/libcuda.so" "$WORK/libcuda-stub.c"
  fi
  LIBDIRS="$(find "$WORK/cudasite/nvidia" -name lib -type d | tr '\n' ':')"
  export LD_LIBRARY_PATH="${LIBDIRS}$TORCH_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PATH="$CUDA_ROOT/bin:$PATH"
  export CUDA_HOME="$CUDA_ROOT"
  CUDA_ARGS=(-DCUDA_TOOLKIT_ROOT_DIR="$CUDA_ROOT" -DCMAKE_CUDA_COMPILER="$CUDA_ROOT/bin/nvcc")
else
  export LD_LIBRARY_PATH="$TORCH_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  CUDA_ARGS=()
fi

# 3. the real CMake build. The torch root comes first in CMAKE_PREFIX_PATH: with only share/cmake,
#    TorchConfig's find_library picks Debian's /usr/lib libtorch.so (native/CMakeLists.txt refuses it).
say "configuring $WORK/build"
cmake -S "$ROOT/native" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_PREFIX_PATH=$TORCH_ROOT;$TORCH_ROOT/share/cmake" "${CUDA_ARGS[@]}" >"$WORK/configure.log" 2>&1 ||
  { tail -n 30 "$WORK/configure.log"; exit 1; }
grep -E 'smnas-trainer:|Found Torch' "$WORK/configure.log" >&2
say "building (-j$JOBS)"
cmake --build "$WORK/build" -j"$JOBS" >"$WORK/build.log" 2>&1 || { grep -E 'error|Error' "$WORK/build.log" | head -n 40; exit 1; }
# our code must compile without warnings (linker notes about the wheels' libraries aside)
if grep -E "^$ROOT/native/.*warning:" "$WORK/build.log"; then say "compiler warnings in native/"; exit 1; fi
grep -q 'SMNAS_WITH_CUDA' "$WORK/build/CMakeFiles/smnas_torch.dir/flags.make" && say "built with SMNAS_WITH_CUDA (CUDA allocator statistics compiled)"
[ "${SKIP_RUN:-0}" = "1" ] && { say "built; SKIP_RUN=1"; exit 0; }

# 4. run on the CPU
BIN="$WORK/build/smnas-trainer"
say "unit tests (ctest) with the 2.x build"
(cd "$WORK/build" && ctest --output-on-failure 2>&1 | tail -n 5)
cd "$ROOT"
say "describe test (parameter counts vs the cost model) with the 2.x build"
SMNAS_TRAINER="$BIN" npx jest test/native/describe.test.ts 2>&1 | tail -n 6
DATA="$WORK/shapes"
[ -d "$DATA" ] || bin/smnas data synth --out "$DATA" --train 32 --val 16 --size 128 >/dev/null
say "short train with bf16 autocast + bench on a dataset image"
SMNAS_TRAINER="$BIN" bin/smnas train --arch '128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc' --data "$DATA" --max-iterations 6 \
  --mixed-precision bf16 --threads 2 --out "$WORK/run-train" --json | tail -n 1
SMNAS_TRAINER="$BIN" bin/smnas bench --arch '128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc' --data "$DATA" --iterations 5 --warmup 2 --threads 2 --json | tail -n 1
say "done"
