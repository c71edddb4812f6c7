#!/usr/bin/env bash
# The whole test suite: set-up (idempotent), then CTest (the native unit tests), the house tooling
# (scripts/lint.sh: Prettier, ESLint, clang-format), then jest (unit, activity, workflow tests on a
# real Temporal dev server, evaluator vs pycocotools, native trainer integration, browser tests).
#
# The suite cannot silently shrink:
#  - missing native tests (native/build/CTestTestfile.cmake, smnas-unit-tests) fail the run;
#    SMNAS_SKIP_NATIVE=1 leaves them out locally and says so, and is refused under CI=true;
#  - a skipped test is listed with its reason; under CI=true it fails the run, except the
#    allowances named below (jest: test/support/no-skip-reporter.js).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf '[test] %s\n' "$*" >&2; }
CI_STRICT=0; [ "${CI:-}" = "true" ] && CI_STRICT=1

# CTest skips allowed everywhere, each by design and each run elsewhere:
#  - Cuda.*: need a CUDA device; without one their logic (tolerances, loss-scaler arithmetic,
#    checkpoint round trip) runs below on the CPU with SMNAS_CUDA_TESTS_ON_CPU=1, and on a GPU
#    machine they run in CTest itself;
#  - DeformConv.MatchesTorchvisionDump: needs a dump written by native/tools/deform_conv_torchvision.py;
#    test/native/deform-torchvision.test.ts writes one and runs this test with it.
CTEST_ALLOWED_SKIPS='^(Cuda\.[A-Za-z0-9_]+|DeformConv\.MatchesTorchvisionDump)$'
# In the CPU stand-in run of Cuda.*: the allocator statistics exist only on a CUDA device
# (bench/gpu-check.sh runs that test on one).
CUDA_ON_CPU_ALLOWED_SKIPS='^Cuda\.PeakMemoryReadsTheCachingAllocator$'

if [ "${SMNAS_SKIP_NATIVE:-0}" = "1" ] && [ $CI_STRICT = 1 ]; then
  say "SMNAS_SKIP_NATIVE=1 under CI=true: the native tests are part of the suite; refusing"
  exit 1
fi
bash scripts/setup.sh
status=0

# unexpected_skips <allowed regex> <names...>: prints the names the regex does not allow
unexpected_skips() {
  local allowed="$1"; shift
  local n
  for n in "$@"; do [[ "$n" =~ $allowed ]] || printf '%s\n' "$n"; done
}

if [ "${SMNAS_SKIP_NATIVE:-0}" = "1" ]; then
  say "native tests SKIPPED: SMNAS_SKIP_NATIVE=1 (refused under CI=true)"
elif [ ! -f native/build/CTestTestfile.cmake ] || [ ! -x native/build/smnas-unit-tests ]; then
  say "native tests missing: native/build/CTestTestfile.cmake or native/build/smnas-unit-tests is not there"
  say "  (scripts/setup.sh builds them; GoogleTest comes from the googletest/libgtest-dev apt packages)"
  status=1
else
  log="$(mktemp -t smnas-ctest.XXXXXX)"
  (cd native/build && ctest --output-on-failure) 2>&1 | tee "$log" || status=1
  # "The following tests did not run:" lists "<n> - <name> (Skipped)"
  mapfile -t skipped < <(sed -n 's/^[[:space:]]*[0-9][0-9]* - \(.*\) (Skipped)$/\1/p' "$log")
  rm -f "$log"
  mapfile -t bad < <(unexpected_skips "$CTEST_ALLOWED_SKIPS" "${skipped[@]+"${skipped[@]}"}")
  if [ ${#skipped[@]} -gt 0 ]; then say "CTest skipped ${#skipped[@]} test(s) (allowed: $CTEST_ALLOWED_SKIPS)"; fi
  if [ ${#bad[@]} -gt 0 ]; then
    say "CTest skipped tests outside the allowance: ${bad[*]}"
    [ $CI_STRICT = 1 ] && { say "  refused under CI=true"; status=1; }
  fi
  # CTest skips the CUDA unit tests without a GPU; their own logic (tolerances, loss-scaler
  # arithmetic, checkpoint round trip) still runs here on the CPU
  log="$(mktemp -t smnas-cuda-cpu.XXXXXX)"
  SMNAS_CUDA_TESTS_ON_CPU=1 native/build/smnas-unit-tests --gtest_filter='Cuda.*' 2>&1 | tee "$log" || status=1
  # (not --gtest_brief: its summary does not name the skipped tests)
  mapfile -t skipped < <(sed -n 's/^\[  SKIPPED \] \([A-Za-z0-9_]*\.[A-Za-z0-9_]*\).*/\1/p' "$log" | sort -u)
  rm -f "$log"
  mapfile -t bad < <(unexpected_skips "$CUDA_ON_CPU_ALLOWED_SKIPS" "${skipped[@]+"${skipped[@]}"}")
  if [ ${#bad[@]} -gt 0 ]; then
    say "Cuda.* on the CPU skipped tests outside the allowance ($CUDA_ON_CPU_ALLOWED_SKIPS): ${bad[*]}"
    [ $CI_STRICT = 1 ] && { say "  refused under CI=true"; status=1; }
  fi
fi
# house tooling: formatting (Prettier, clang-format) and ESLint with the Temporal sandbox rules
bash scripts/lint.sh || status=1
node_modules/.bin/jest --ci "$@" || status=1
exit $status
