# Shared by up.sh, down.sh, status.sh and e2e.sh (sourced). Paths, ports and process helpers of
# the local production-shaped cluster.
#
# Environment:
#   SMNAS_INFRA_STATE      state folder (default <repo>/.state/infra-local): PostgreSQL data,
#                          certificates, configs, logs, pid files
#   SMNAS_INFRA_PORT_BASE  ports are derived from it (default 17000): PostgreSQL base+432, frontend
#                          gRPC base+233 (mTLS), history/matching/worker base+234/235/239,
#                          membership base+933.., frontend HTTP base+243, UI base+1233
#   SMNAS_INFRA_NAMESPACE  namespace created and given the search attributes (default 'default')
#   SMNAS_TEMPORAL_CACHE   where build-server.sh / build-ui.sh keep the binaries
#                          (default ~/.cache/smnas-temporal)
INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$INFRA_DIR/../.." && pwd)"
STATE="${SMNAS_INFRA_STATE:-$ROOT/.state/infra-local}"
BASE="${SMNAS_INFRA_PORT_BASE:-17000}"
NAMESPACE="${SMNAS_INFRA_NAMESPACE:-default}"
PG_PORT=$((BASE + 432))
FRONTEND_PORT=$((BASE + 233))
FRONTEND_HTTP_PORT=$((BASE + 243))
HISTORY_PORT=$((BASE + 234))
MATCHING_PORT=$((BASE + 235))
WORKER_PORT=$((BASE + 239))
UI_PORT=$((BASE + 1233))
METRICS_PORT=$((BASE + 800))
PG_BIN="${SMNAS_PG_BIN:-/usr/lib/postgresql/15/bin}"
TLS="$STATE/tls"
RUN="$STATE/run"
LOGS="$STATE/logs"
ADDRESS="127.0.0.1:$FRONTEND_PORT"
TEMPORAL_CLI="${SMNAS_TEMPORAL_CLI:-$ROOT/.venv/bin/temporal}"

say() { printf '[infra] %s\n' "$*" >&2; }
die() {
  printf '[infra] ERROR: %s\n' "$*" >&2
  exit 1
}

# the CLI with the admin client certificate
tctl_admin() {
  "$TEMPORAL_CLI" --address "$ADDRESS" --tls-ca-path "$TLS/ca.pem" --tls-cert-path "$TLS/admin.pem" \
    --tls-key-path "$TLS/admin.key" --tls-server-name localhost "$@"
}

# pid of a process we started (run/<name>.pid) if it still runs the same program, else empty
running_pid() {
  local name="$1" f="$RUN/$1.pid" pid want
  [ -f "$f" ] || return 0
  pid="$(sed -n 1p "$f")"
  want="$(sed -n 2p "$f")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$want"; then echo "$pid"; fi
}

pg_pid() {
  local f="$STATE/pg/data/postmaster.pid" pid
  [ -f "$f" ] || return 0
  pid="$(sed -n 1p "$f")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q postgres && echo "$pid"
  return 0
}

# run a PostgreSQL program as its owner (PostgreSQL refuses to run as root)
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# stop_pid NAME PID GRACE_S: SIGTERM, then SIGKILL after the grace
stop_pid() {
  local name="$1" pid="$2" grace="${3:-30}" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { say "$name stopped"; return 0; }
    sleep 0.1
  done
  say "$name did not stop within ${grace}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}
