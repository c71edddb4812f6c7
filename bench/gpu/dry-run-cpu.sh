#!/usr/bin/env bash
# CPU dry run of the GPU check (bench/gpu-check.sh, issue #16): the same script, on this machine's
# CPU, against the PyTorch 2.11 + torchvision 0.26 wheels from PyPI (the versions the H200 image
# has), at the small `--smoke` scale, so the script, its build and its job files are known to work
# before any device time is spent. Not run by CI: the first run downloads ~5 GB of wheels and builds
# native/ against libtorch 2.11 with -j1 (about 20 minutes on a 2-core VM); later runs reuse both.
#
#   bash bench/gpu/dry-run-cpu.sh [--prepare]      (--prepare: rebuild .gpu-check first)
#
# Environment: TORCH211 (default /work/torch211; the venv and the build go there, never inside the
# repository), JOBS (default 1).
#
# Why a CUDA compiler on a CPU machine: the PyPI wheel is a CUDA build, and its TorchConfig.cmake
# stops ("Your installed Caffe2 version uses CUDA but I cannot find the CUDA libraries") unless it
# finds a CUDA toolkit. The wheel's own CUDA runtime packages plus nvcc from PyPI
# (`cuda-toolkit[nvcc,crt]` at the wheel's pinned version, and nvidia-nvvm at nvcc's version: a newer
# nvvm makes PTX that this ptxas rejects) form one, with lib64 -> lib, unversioned .so links and a
# link-only libcuda.so stub (no driver here), as native/tools/check-torch2.sh does. The binary then
# runs on the CPU (torch::cuda::is_available() is false) and the CUDA tests skip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TORCH211="${TORCH211:-/work/torch211}"
case "$TORCH211" in "$ROOT"|"$ROOT"/*) echo "TORCH211 must be outside the repository" >&2; exit 2 ;; esac
say() { printf '[dry-run-cpu] %s\n' "$*" >&2; }
mkdir -p "$TORCH211"
VENV="$TORCH211/venv"
PY="$VENV/bin/python3"

if ! "$PY" -c 'import torch, torchvision; assert torch.__version__.startswith("2.11.0") and torchvision.__version__.startswith("0.26.0")' 2>/dev/null; then
  say "creating $VENV with torch==2.11.0 torchvision==0.26.0 (PyPI; pulls the CUDA runtime wheels)"
  [ -x "$PY" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --progress-bar off torch==2.11.0 torchvision==0.26.0
fi
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
CUDA_ROOT="$SITE/nvidia/cu13"
if [ ! -x "$CUDA_ROOT/bin/nvcc" ]; then
  pin="$(sed -n 's/^Requires-Dist: cuda-toolkit\[[^]]*\]==\([0-9.]*\).*/\1/p' "$SITE"/torch-2.11.0*.dist-info/METADATA | head -n 1)"
  say "installing nvcc: cuda-toolkit[nvcc,crt]==$pin"
  "$VENV/bin/pip" install -q --progress-bar off "cuda-toolkit[nvcc,crt]==$pin"
  nvcc_ver="$("$VENV/bin/pip" show nvidia-cuda-nvcc | sed -n 's/^Version: //p')"
  "$VENV/bin/pip" install -q --progress-bar off "nvidia-nvvm==$nvcc_ver"
fi
chmod +x "$CUDA_ROOT"/bin/* "$CUDA_ROOT"/nvvm/bin/* 2>/dev/null || true
[ -e "$CUDA_ROOT/lib64" ] || ln -s lib "$CUDA_ROOT/lib64"
(cd "$CUDA_ROOT/lib" && for f in *.so.*; do b="${f%%.so.*}.so"; [ -e "$b" ] || ln -s "$f" "$b"; done)
if [ ! -f "$CUDA_ROOT/lib/stubs/libcuda.so" ]; then
  mkdir -p "$CUDA_ROOT/lib/stubs"
  echo 'void smnas_libcuda_link_stub(void) {}' >"$TORCH211/libcuda-stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$CUDA_ROOT/lib/stubs/libcuda.so" "$TORCH211/libcuda-stub.c"
fi

cd "$ROOT"
if [ "${1:-}" = --prepare ] || [ ! -f .gpu-check/smoke/manifest.json ]; then
  PYTHON="$PY" bash bench/gpu-check.sh --prepare
fi
export PATH="$CUDA_ROOT/bin:$PATH" CUDA_HOME="$CUDA_ROOT"
export SMNAS_CMAKE_ARGS="-DCUDA_TOOLKIT_ROOT_DIR=$CUDA_ROOT -DCMAKE_CUDA_COMPILER=$CUDA_ROOT/bin/nvcc"
export PYTHON="$PY" WORK="${WORK:-$TORCH211/gpu-check}" JOBS="${JOBS:-1}"
say "bash bench/gpu-check.sh --device cpu --smoke (WORK=$WORK, JOBS=$JOBS)"
exec bash bench/gpu-check.sh --device cpu --smoke
