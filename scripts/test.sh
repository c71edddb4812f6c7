#!/usr/bin/env bash
# The whole test suite: set-up (idempotent), then jest (unit, activity, workflow tests on a real
# Temporal dev server, evaluator vs pycocotools, native trainer integration), then CTest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
status=0
if [ -f native/build/CTestTestfile.cmake ]; then
  (cd native/build && ctest --output-on-failure) || status=1
fi
node_modules/.bin/jest --ci "$@" || status=1
exit $status
