#!/usr/bin/env bash
# Certificates for the local cluster's mTLS (and a template for a real one): a CA, the Temporal
# server's certificate (frontend and internode; serverAuth + clientAuth, since the services dial
# each other with it) and one client certificate per worker or user, all with openssl.
#
#   bash infra/local/certs.sh DIR [client-name ...]
#
# DIR gets ca.pem/ca.key, server.pem/server.key and <name>.pem/<name>.key per client (default
# clients: control gpu-0 gpu-1 admin). Existing files are kept (idempotent; a new name adds a
# client). Keys are ECDSA P-256, mode 0600. The server certificate names localhost, 127.0.0.1 and
# the names in SMNAS_TLS_SERVER_NAMES (comma separated; default temporal-frontend,
# temporal-frontend.temporal.svc), so clients verify it as `localhost` or a cluster name.
set -euo pipefail
command -v openssl >/dev/null || { echo "certs.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: certs.sh DIR [client-name ...]" >&2; exit 2; }
DIR="$1"; shift
CLIENTS=("$@"); [ ${#CLIENTS[@]} -gt 0 ] || CLIENTS=(control gpu-0 gpu-1 admin)
DAYS_CA="${SMNAS_TLS_CA_DAYS:-3650}"
DAYS="${SMNAS_TLS_DAYS:-825}"
mkdir -p "$DIR"
chmod 700 "$DIR"
umask 077

newkey() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.tmp" && mv "$1.tmp" "$1"; }

if [ ! -f "$DIR/ca.pem" ] || [ ! -f "$DIR/ca.key" ]; then
  newkey "$DIR/ca.key"
  openssl req -x509 -new -key "$DIR/ca.key" -sha256 -days "$DAYS_CA" -subj "/O=SM-NAS/CN=SM-NAS Temporal CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out "$DIR/ca.pem.tmp"
  mv "$DIR/ca.pem.tmp" "$DIR/ca.pem"
  echo "certs.sh: CA $DIR/ca.pem" >&2
fi

# sign NAME CN EKU SAN
sign() {
  local name="$1" cn="$2" eku="$3" san="$4"
  [ -f "$DIR/$name.pem" ] && [ -f "$DIR/$name.key" ] && return 0
  newkey "$DIR/$name.key"
  local ext
  ext="$(mktemp)"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\nsubjectAltName=%s\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n' "$eku" "$san" >"$ext"
  openssl req -new -key "$DIR/$name.key" -subj "/O=SM-NAS/CN=$cn" -out "$DIR/$name.csr"
  openssl x509 -req -in "$DIR/$name.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial -sha256 \
    -days "$DAYS" -extfile "$ext" -out "$DIR/$name.pem.tmp" 2>/dev/null
  mv "$DIR/$name.pem.tmp" "$DIR/$name.pem"
  rm -f "$ext" "$DIR/$name.csr"
  echo "certs.sh: $name ($cn) $DIR/$name.pem" >&2
}

san="DNS:localhost,IP:127.0.0.1"
IFS=',' read -r -a extra <<<"${SMNAS_TLS_SERVER_NAMES:-temporal-frontend,temporal-frontend.temporal.svc}"
for n in "${extra[@]}"; do [ -n "$n" ] && san="$san,DNS:$n"; done
sign server "temporal-frontend" "serverAuth,clientAuth" "$san"
for c in "${CLIENTS[@]}"; do
  [[ "$c" =~ ^[a-z0-9][a-z0-9-]*$ ]] || { echo "certs.sh: client name '$c' must be lowercase letters, digits and '-'" >&2; exit 2; }
  [[ "$c" == ca || "$c" == server ]] && { echo "certs.sh: '$c' is reserved" >&2; exit 2; }
  sign "$c" "smnas-$c" "clientAuth" "DNS:smnas-$c"
done
chmod 644 "$DIR"/*.pem
