#!/usr/bin/env bash
# Generates throw-away TLS material for tests into DIR (openssl from Debian):
#   ca.pem                      cluster CA
#   member-N.pem/.key (N=1..3)  signed by the CA; CN and DNS SAN "member-N",
#                               IP SAN 127.0.0.1; server and client usage
#   other-ca.pem, rogue-1.pem/.key  a second CA and a "member-1" it signed
# Usage: gen_test_certs.sh DIR
set -euo pipefail
dir=${1:?usage: gen_test_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

ca() {  # name
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1-key.pem" -out "$1.pem" -days 2 -subj "/CN=$1" 2>/dev/null
}
leaf() {  # name ca
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1.key" -out "$1.csr" -subj "/CN=${3:-$1}" 2>/dev/null
  printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' \
    "${3:-$1}" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2-key.pem" -CAcreateserial \
    -out "$1.pem" -days 2 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca
ca other-ca
for n in 1 2 3; do leaf "member-$n" ca; done
leaf rogue-1 other-ca member-1
