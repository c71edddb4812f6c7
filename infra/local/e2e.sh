#!/usr/bin/env bash
# Opt-in end-to-end test of the production-shaped local cluster (not in the default suite: it
# builds or reuses the Temporal server, starts PostgreSQL and trains real models; 5-10 minutes on
# 2 cores once the server is built). Needs the native trainer (native/build/smnas-trainer or
# SMNAS_TRAINER).
#
#   bash infra/local/e2e.sh            # exit 0 only when every check passed
#
# A fresh state folder and free ports each run (SMNAS_INFRA_STATE / SMNAS_INFRA_PORT_BASE to pin
# them; SMNAS_E2E_KEEP=1 keeps the state and logs). up.sh, then bench/cluster-e2e.ts (mTLS refusals,
# a control and two GPU workers with their own certificates, the reduced toy campaign, SIGKILL of
# the Temporal server mid-campaign and its restart, every evaluation recorded once), then down.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
trainer="${SMNAS_TRAINER:-$ROOT/native/build/smnas-trainer}"
[ -x "$trainer" ] || { echo "e2e: the native trainer $trainer is not built (scripts/setup.sh builds it, or set SMNAS_TRAINER)" >&2; exit 1; }
if [ -z "${SMNAS_INFRA_PORT_BASE:-}" ]; then
  for b in 27000 28000 29000 31000 33000 35000; do
    used=0
    for off in 233 234 235 239 243 432 800 933 934 935 939 1233; do
      if (exec 3<>"/dev/tcp/127.0.0.1/$((b + off))") 2>/dev/null; then used=1; break; fi
    done
    [ $used = 0 ] && { export SMNAS_INFRA_PORT_BASE=$b; break; }
  done
  [ -n "${SMNAS_INFRA_PORT_BASE:-}" ] || { echo "e2e: no free port range" >&2; exit 1; }
fi
export SMNAS_INFRA_STATE="${SMNAS_INFRA_STATE:-$(mktemp -d /tmp/smnas-infra-e2e.XXXXXX)}"
export SMNAS_E2E_WORK="$SMNAS_INFRA_STATE/e2e"
export SMNAS_E2E_ROGUE_TLS="$SMNAS_INFRA_STATE/rogue-tls"
mkdir -p "$SMNAS_E2E_WORK"
cleanup() {
  bash "$ROOT/infra/local/down.sh" || true
  if [ "${SMNAS_E2E_KEEP:-0}" = 1 ]; then echo "e2e: kept $SMNAS_INFRA_STATE" >&2; else rm -rf "$SMNAS_INFRA_STATE"; fi
}
trap cleanup EXIT
start=$(date +%s)
node_modules/.bin/tsc -p tsconfig.json >/dev/null || { echo "e2e: TypeScript build failed" >&2; exit 1; }
touch dist/.build-stamp
bash "$ROOT/infra/local/certs.sh" "$SMNAS_E2E_ROGUE_TLS" intruder 2>/dev/null
# the intruder's CA is not the cluster's: remove it so nothing can trust it by accident
rm -f "$SMNAS_E2E_ROGUE_TLS/ca.key"
bash "$ROOT/infra/local/up.sh"
echo "e2e: cluster up after $(($(date +%s) - start)) s" >&2
status=0
node dist/bench/cluster-e2e.js || status=$?
echo "e2e: finished after $(($(date +%s) - start)) s with status $status" >&2
exit $status
