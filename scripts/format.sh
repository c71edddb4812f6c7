#!/usr/bin/env bash
# Format the codebase in place: Prettier for TypeScript/JavaScript (.prettierrc.json), clang-format
# for native/ (.clang-format). scripts/lint.sh checks the same without writing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
command -v clang-format >/dev/null || { echo "format: clang-format missing (bash scripts/setup.sh installs it)" >&2; exit 2; }
node_modules/.bin/prettier --write --log-level warn "**/*.{ts,js,cjs}"
git ls-files 'native/src/*.cpp' 'native/src/*.hpp' 'native/tests/*.cpp' 'native/tests/*.hpp' | xargs clang-format -i
