#!/usr/bin/env bash
# House tooling, run by scripts/test.sh: Prettier (formatting of TypeScript/JavaScript), ESLint
# (recommended rules; the Temporal sandbox rules for workflows/, eslint.config.cjs) and
# clang-format (native/). Fix formatting with `bash scripts/format.sh`.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
status=0
command -v clang-format >/dev/null || { echo "lint: clang-format missing (bash scripts/setup.sh installs it)" >&2; exit 2; }
node_modules/.bin/prettier --check --log-level warn "**/*.{ts,js,cjs}" || { echo "lint: formatting differs (bash scripts/format.sh)" >&2; status=1; }
node_modules/.bin/eslint --max-warnings 0 . || status=1
git ls-files 'native/src/*.cpp' 'native/src/*.hpp' 'native/tests/*.cpp' 'native/tests/*.hpp' | xargs clang-format --dry-run -Werror || { echo "lint: native/ formatting differs (bash scripts/format.sh)" >&2; status=1; }
[ $status -eq 0 ] && echo "lint: prettier, eslint and clang-format clean" >&2
exit $status
