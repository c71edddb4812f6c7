#!/usr/bin/env bash
# Fault matrix (docs/reliability.md): a reduced toy campaign once per fault, with the real native
# trainer on CPU; prints a markdown table. Needs the native build and the Temporal CLI
# (scripts/setup.sh). FAULTS=none,trainer-sigstop limits the faults run (default: all).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
node_modules/.bin/tsc -p tsconfig.json >/dev/null || true   # dist is emitted even when others' files do not type-check
exec node dist/bench/fault-matrix.js ${FAULTS:+--faults "$FAULTS"} "$@"
