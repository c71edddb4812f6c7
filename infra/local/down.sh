#!/usr/bin/env bash
# Stops the local cluster of up.sh: Web UI, Temporal server (SIGTERM, SIGKILL after 30 s), then
# PostgreSQL (fast shutdown). The state folder stays: `up.sh` brings the same cluster back, with
# its workflows. `down.sh --purge` also removes the state folder.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pid="$(running_pid temporal-ui)"
[ -n "$pid" ] && stop_pid "Web UI server" "$pid" 10
pid="$(running_pid temporal-server)"
[ -n "$pid" ] && stop_pid "Temporal server" "$pid" 30
rm -f "$RUN/temporal-ui.pid" "$RUN/temporal-server.pid"
if [ -n "$(pg_pid)" ]; then
  as_pg "$PG_BIN/pg_ctl" -D "$STATE/pg/data" -m fast -w -t 60 stop >&2 && say "PostgreSQL stopped"
fi
if [ "${1:-}" = --purge ]; then
  rm -rf "$STATE"
  say "removed $STATE"
fi
say "down"
