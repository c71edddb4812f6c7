#!/usr/bin/env bash
# The screenshots in docs/ (docs/dashboard.md): the live dashboard and the static report of one
# campaign, from its artifact store, in headless chromium.
#   bash scripts/screenshots.sh [campaign-id] [dashboard flags, e.g. --address host:port | --no-temporal]
# campaign-id: default the newest campaign under $ARTIFACTS (default $SMNAS_STATE/artifacts or .state/artifacts).
# Writes docs/dashboard.png, docs/report.png and docs/report-pareto-modular.png.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ARTIFACTS="${ARTIFACTS:-${SMNAS_STATE:-$ROOT/.state}/artifacts}"
ID="${1:-}"
[ $# -gt 0 ] && shift
if [ -z "$ID" ]; then
  ID="$(ls -t "$ARTIFACTS/campaigns" 2>/dev/null | head -n 1 || true)"
  [ -n "$ID" ] || { echo "screenshots: no campaign under $ARTIFACTS/campaigns (run bash scripts/toy-campaign.sh first, or set ARTIFACTS)" >&2; exit 2; }
fi
TMP="$(mktemp -d /tmp/smnas-shots-XXXXXX)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

bin/smnas search report "$ID" --artifacts "$ARTIFACTS" --out "$TMP/report" >/dev/null
bin/smnas dashboard --port 0 --json --artifacts "$ARTIFACTS" --campaign "$ID" --interval 2 "$@" >"$TMP/url" 2>"$TMP/dashboard.log" &
PID=$!
for _ in $(seq 1 120); do [ -s "$TMP/url" ] && break; sleep 0.5; done
URL="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).url)' "$TMP/url")"
# until the dashboard has reached Temporal or found it unreachable (it connects in the background)
for _ in $(seq 1 60); do
  curl -s "${URL%%#*}api/campaigns" | grep -q '"temporalNote":"Connecting' || break
  sleep 0.5
done
node scripts/screenshot.js "$URL" docs/dashboard.png --click stage-two
node scripts/screenshot.js "file://$TMP/report/report.html" docs/report.png --click stage-one
cp "$TMP/report/pareto-modular.png" docs/report-pareto-modular.png
echo "screenshots of campaign $ID: docs/dashboard.png docs/report.png docs/report-pareto-modular.png"
