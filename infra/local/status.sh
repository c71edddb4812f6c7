#!/usr/bin/env bash
# What of the local cluster runs: PostgreSQL, Temporal server (and whether the frontend answers
# over mTLS), Web UI, the namespace's search attributes. Exit 0 when everything is up, 3 if not.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ok=0
line() { printf '%-16s %s\n' "$1" "$2"; }
p="$(pg_pid)"
if [ -n "$p" ]; then line postgres "running pid $p, 127.0.0.1:$PG_PORT, data $STATE/pg/data"; else line postgres "stopped"; ok=3; fi
p="$(running_pid temporal-server)"
if [ -n "$p" ]; then
  h="$(tctl_admin operator cluster health 2>&1 | tail -1)"
  line temporal "running pid $p, frontend $ADDRESS (mTLS): $h"
  [[ "$h" == *SERVING* ]] || ok=3
  sa="$(tctl_admin operator search-attribute list --namespace "$NAMESPACE" -o json 2>/dev/null | grep -o '"Smnas[A-Za-z]*"' | tr -d '"' | sort -u | tr '\n' ' ')"
  line namespace "$NAMESPACE; search attributes: ${sa:-none}"
else
  line temporal "stopped"
  ok=3
fi
p="$(running_pid temporal-ui)"
if [ -n "$p" ]; then line web-ui "running pid $p, http://127.0.0.1:$UI_PORT"; else line web-ui "stopped"; [ "${SMNAS_INFRA_NO_UI:-0}" = 1 ] || ok=3; fi
line state "$STATE"
exit $ok
