#!/usr/bin/env bash
# Brings up a production-shaped Temporal cluster on this machine, or whatever part of it is not
# running (so it also restarts a killed process; state survives any restart):
#
#   PostgreSQL 15 (Debian's) with its own data folder and port under the state folder, as
#   persistence and visibility of
#   the Temporal server (frontend, history, matching, worker services) built from the Go module
#   go.temporal.io/server at a pinned version (build-server.sh), schema created and upgraded by
#   temporal-sql-tool of the same version, frontend and internode on mTLS (certs.sh), and
#   the Web UI server (github.com/temporalio/ui-server/v2, build-ui.sh) pointing at it with its own
#   client certificate.
# Then the namespace and the project's search attributes (workflows/api.ts SEARCH_ATTRIBUTES).
#
#   bash infra/local/up.sh        # bash infra/local/down.sh stops it; status.sh tells
#
# Environment: see lib.sh (SMNAS_INFRA_STATE, SMNAS_INFRA_PORT_BASE, SMNAS_INFRA_NAMESPACE),
# SMNAS_INFRA_SHARDS (history shards, fixed when the database is created; default 4),
# SMNAS_INFRA_CLIENTS (client certificates; default "control gpu-0 gpu-1 admin ui"),
# SMNAS_INFRA_NO_UI=1 (no Web UI server).
# For workers: $SMNAS_INFRA_STATE/env/<client>.env holds TEMPORAL_* settings of that client's
# certificate (`set -a; . .state/infra-local/env/gpu-0.env; set +a; bin/smnas worker --queue gpu`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- tools (fail loudly) ----
for t in initdb pg_ctl postgres; do
  [ -x "$PG_BIN/$t" ] || die "PostgreSQL 15 server not found ($PG_BIN/$t): apt-get install postgresql-15 (or set SMNAS_PG_BIN)"
done
command -v psql >/dev/null || die "psql not found: apt-get install postgresql-client-15"
command -v openssl >/dev/null || die "openssl not found: apt-get install openssl"
command -v node >/dev/null || die "node not found"
[ -x "$TEMPORAL_CLI" ] || die "Temporal CLI not found at $TEMPORAL_CLI (bash scripts/setup.sh installs it; or set SMNAS_TEMPORAL_CLI)"
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' user to run PostgreSQL (the postgresql-15 package creates it)"
  command -v runuser >/dev/null || die "runuser not found (util-linux)"
fi
SERVER_DIR="$(bash "$INFRA_DIR/build-server.sh")" || die "building the Temporal server failed (build-server.sh)"
SERVER_BIN="$SERVER_DIR/temporal-server"
SQL_TOOL="$SERVER_DIR/temporal-sql-tool"
SCHEMA="$SERVER_DIR/schema/postgresql/v12"
[ -d "$SCHEMA/temporal/versioned" ] || die "schema files missing under $SCHEMA (remove $SERVER_DIR and run build-server.sh again)"
if [ "${SMNAS_INFRA_NO_UI:-0}" != 1 ]; then
  UI_DIR="$(bash "$INFRA_DIR/build-ui.sh")" || die "building the Web UI server failed (build-ui.sh); SMNAS_INFRA_NO_UI=1 runs without it"
fi

mkdir -p "$STATE" "$RUN" "$LOGS" "$STATE/config" "$STATE/env"

# ---- certificates ----
read -r -a clients <<<"${SMNAS_INFRA_CLIENTS:-control gpu-0 gpu-1 admin ui}"
bash "$INFRA_DIR/certs.sh" "$TLS" "${clients[@]}" admin ui
for c in "${clients[@]}"; do
  cat >"$STATE/env/$c.env" <<ENV
# client '$c' of the local cluster (infra/local/up.sh); names as the Temporal CLI's
TEMPORAL_ADDRESS=$ADDRESS
TEMPORAL_NAMESPACE=$NAMESPACE
TEMPORAL_TLS_CA=$TLS/ca.pem
TEMPORAL_TLS_CERT=$TLS/$c.pem
TEMPORAL_TLS_KEY=$TLS/$c.key
TEMPORAL_TLS_SERVER_NAME=localhost
ENV
done

# ---- PostgreSQL ----
PGDATA="$STATE/pg/data"
PGSOCK="$STATE/pg/sock"
mkdir -p "$STATE/pg"
if [ ! -f "$STATE/pg/password" ]; then
  (umask 077 && openssl rand -hex 16 >"$STATE/pg/password.tmp" && mv "$STATE/pg/password.tmp" "$STATE/pg/password")
fi
PGPW="$(cat "$STATE/pg/password")"
if [ "$(id -u)" = 0 ]; then
  chmod 755 "$STATE"
  chown postgres: "$STATE/pg"
fi
if [ ! -f "$PGDATA/PG_VERSION" ]; then
  say "initdb $PGDATA (user temporal, scram-sha-256 over TCP)"
  pwtmp="$STATE/pg/initdb-pw"
  (umask 077 && printf '%s\n' "$PGPW" >"$pwtmp")
  [ "$(id -u)" = 0 ] && chown postgres: "$pwtmp"
  as_pg "$PG_BIN/initdb" -D "$PGDATA" -U temporal --pwfile="$pwtmp" --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --no-locale >"$LOGS/initdb.log" 2>&1 || { rm -f "$pwtmp"; cat "$LOGS/initdb.log" >&2; die "initdb failed"; }
  rm -f "$pwtmp"
fi
mkdir -p "$PGSOCK"
[ "$(id -u)" = 0 ] && chown postgres: "$PGSOCK"
if [ -z "$(pg_pid)" ]; then
  say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$STATE/pg/postgres.log" -w -t 120 \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PGSOCK -c max_connections=${SMNAS_PG_MAX_CONNECTIONS:-100}" start >&2 ||
    { tail -20 "$STATE/pg/postgres.log" >&2; die "PostgreSQL did not start (log: $STATE/pg/postgres.log)"; }
fi
export PGPASSWORD="$PGPW"
psql_q() { psql -h 127.0.0.1 -p "$PG_PORT" -U temporal -d "$1" -tAqc "$2"; }

# ---- schema: created once, upgraded on every up (temporal-sql-tool of the server's version) ----
sqltool() { "$SQL_TOOL" --plugin postgres12 --ep 127.0.0.1 -p "$PG_PORT" -u temporal --pw "$PGPW" "$@"; }
for db in temporal temporal_visibility; do
  dir="$SCHEMA/temporal/versioned"
  [ "$db" = temporal_visibility ] && dir="$SCHEMA/visibility/versioned"
  if [ "$(psql_q postgres "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
    say "creating database $db"
    sqltool --db "$db" create-database >"$LOGS/sql-tool-$db.log" 2>&1 || { cat "$LOGS/sql-tool-$db.log" >&2; die "create-database $db failed"; }
  fi
  if [ "$(psql_q "$db" "SELECT to_regclass('schema_version') IS NOT NULL")" != t ]; then
    sqltool --db "$db" setup-schema -v 0.0 >>"$LOGS/sql-tool-$db.log" 2>&1 || { tail -20 "$LOGS/sql-tool-$db.log" >&2; die "setup-schema $db failed"; }
  fi
  sqltool --db "$db" update-schema -d "$dir" >>"$LOGS/sql-tool-$db.log" 2>&1 || { tail -20 "$LOGS/sql-tool-$db.log" >&2; die "update-schema $db failed"; }
  say "schema $db at version $(psql_q "$db" "SELECT curr_version FROM schema_version")"
done

# ---- Temporal server config (rewritten on every up; the shard count is fixed at creation) ----
if [ ! -f "$STATE/shards" ]; then echo "${SMNAS_INFRA_SHARDS:-4}" >"$STATE/shards"; fi
SHARDS="$(cat "$STATE/shards")"
cat >"$STATE/config/dynamic.yaml" <<'YAML'
# dynamic config of the local cluster (infra/local/up.sh)
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
frontend.enableUpdateWorkflowExecution:
  - value: true
frontend.enableUpdateWorkflowExecutionAsyncAccepted:
  - value: true
YAML
server_tls() {
  cat <<YAML
        server:
          certFile: $TLS/server.pem
          keyFile: $TLS/server.key
          requireClientAuth: true
          clientCaFiles: [$TLS/ca.pem]
        client:
          serverName: localhost
          rootCaFiles: [$TLS/ca.pem]
YAML
}
datastore() {
  cat <<YAML
      sql:
        pluginName: postgres12
        databaseName: $1
        connectAddr: 127.0.0.1:$PG_PORT
        connectProtocol: tcp
        user: temporal
        password: "$PGPW"
        maxConns: $2
        maxIdleConns: $2
        maxConnLifetime: 1h
YAML
}
(
  umask 077
  cat >"$STATE/config/temporal.yaml" <<YAML
# written by infra/local/up.sh; see docs/runtime.md "Production"
log:
  stdout: true
  level: ${SMNAS_INFRA_LOG_LEVEL:-warn}
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: $SHARDS
  datastores:
    default:
$(datastore temporal "${SMNAS_PG_CONNS:-20}")
    visibility:
$(datastore temporal_visibility "${SMNAS_PG_VIS_CONNS:-10}")
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: 127.0.0.1:$METRICS_PORT
  tls:
    internode:
$(server_tls)
    frontend:
$(server_tls)
    systemWorker:
      certFile: $TLS/server.pem
      keyFile: $TLS/server.key
      client:
        serverName: localhost
        rootCaFiles: [$TLS/ca.pem]
services:
  frontend:
    rpc: { grpcPort: $FRONTEND_PORT, membershipPort: $((BASE + 933)), bindOnLocalHost: true, httpPort: $FRONTEND_HTTP_PORT }
  matching:
    rpc: { grpcPort: $MATCHING_PORT, membershipPort: $((BASE + 935)), bindOnLocalHost: true }
  history:
    rpc: { grpcPort: $HISTORY_PORT, membershipPort: $((BASE + 934)), bindOnLocalHost: true }
  worker:
    rpc: { grpcPort: $WORKER_PORT, membershipPort: $((BASE + 939)), bindOnLocalHost: true }
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: 127.0.0.1:$FRONTEND_PORT
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: $STATE/config/dynamic.yaml
  pollInterval: 10s
YAML
)

# ---- Temporal server ----
if [ -z "$(running_pid temporal-server)" ]; then
  say "starting the Temporal server (frontend $ADDRESS, mTLS)"
  {
    echo "---- $(date -u +%FT%TZ) start"
  } >>"$LOGS/temporal-server.log"
  setsid "$SERVER_BIN" --config-file "$STATE/config/temporal.yaml" --allow-no-auth start \
    --service frontend --service history --service matching --service worker \
    >>"$LOGS/temporal-server.log" 2>&1 </dev/null &
  printf '%s\n%s\n' "$!" "$SERVER_BIN" >"$RUN/temporal-server.pid"
fi
say "waiting for the frontend"
for ((i = 0; ; i++)); do
  if tctl_admin operator cluster health 2>/dev/null | grep -q SERVING; then break; fi
  [ -n "$(running_pid temporal-server)" ] || { tail -30 "$LOGS/temporal-server.log" >&2; die "the Temporal server exited (log: $LOGS/temporal-server.log)"; }
  ((i < 240)) || die "the frontend did not answer within 120 s (log: $LOGS/temporal-server.log)"
  sleep 0.5
done

# ---- namespace and search attributes ----
if ! tctl_admin operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
  say "creating namespace $NAMESPACE (retention 30 days)"
  tctl_admin operator namespace create --namespace "$NAMESPACE" --retention 720h >&2
fi
for ((i = 0; ; i++)); do
  tctl_admin workflow list --namespace "$NAMESPACE" --limit 1 >/dev/null 2>&1 && break
  ((i < 120)) || die "namespace $NAMESPACE not usable after 60 s"
  sleep 0.5
done
"$ROOT/bin/smnas" --help >/dev/null 2>&1 || die "bin/smnas does not run (TypeScript build: npm ci, then bin/smnas --help)"
mapfile -t attrs < <(node -e 'for (const a of require(process.argv[1]).SEARCH_ATTRIBUTES) console.log(a.name + " " + a.type)' "$ROOT/dist/workflows/api.js")
[ ${#attrs[@]} -gt 0 ] || die "no search attributes read from dist/workflows/api.js"
have="$(tctl_admin operator search-attribute list --namespace "$NAMESPACE" -o json)"
for a in "${attrs[@]}"; do
  read -r name type <<<"$a"
  if ! grep -q "\"$name\"" <<<"$have"; then
    say "search attribute $name ($type)"
    tctl_admin operator search-attribute create --namespace "$NAMESPACE" --name "$name" --type "$type" >&2
  fi
done

# ---- Web UI ----
if [ "${SMNAS_INFRA_NO_UI:-0}" != 1 ]; then
  mkdir -p "$STATE/ui/config"
  : >"$STATE/ui/config/base.yaml"
  cat >"$STATE/ui/config/smnas.yaml" <<YAML
temporalGrpcAddress: $ADDRESS
host: 127.0.0.1
port: $UI_PORT
enableUi: true
defaultNamespace: $NAMESPACE
refreshInterval: 1m
cors:
  allowOrigins: []
tls:
  caFile: $TLS/ca.pem
  certFile: $TLS/ui.pem
  keyFile: $TLS/ui.key
  serverName: localhost
  enableHostVerification: true
YAML
  if [ -z "$(running_pid temporal-ui)" ]; then
    say "starting the Web UI server on http://127.0.0.1:$UI_PORT"
    setsid "$UI_DIR/temporal-ui-server" --root "$STATE/ui" --config config --env smnas start \
      >>"$LOGS/temporal-ui.log" 2>&1 </dev/null &
    printf '%s\n%s\n' "$!" "$UI_DIR/temporal-ui-server" >"$RUN/temporal-ui.pid"
  fi
  for ((i = 0; ; i++)); do
    curl -fsS -o /dev/null "http://127.0.0.1:$UI_PORT/api/v1/namespaces/$NAMESPACE" 2>/dev/null && break
    [ -n "$(running_pid temporal-ui)" ] || { tail -20 "$LOGS/temporal-ui.log" >&2; die "the Web UI server exited (log: $LOGS/temporal-ui.log)"; }
    ((i < 120)) || die "the Web UI server did not answer within 60 s (log: $LOGS/temporal-ui.log)"
    sleep 0.5
  done
fi

say "up: frontend $ADDRESS (mTLS, namespace $NAMESPACE), PostgreSQL 127.0.0.1:$PG_PORT${UI_DIR:+, Web UI http://127.0.0.1:$UI_PORT}"
say "workers: set -a; . $STATE/env/control.env; set +a; bin/smnas worker --queue control"
