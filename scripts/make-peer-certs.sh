#!/usr/bin/env bash
# Makes a CA and one certificate per member for mutual TLS between members,
# with the openssl commands shown in docs/operations.md ("Between members"):
#   scripts/make-peer-certs.sh DIR ID...
# writes DIR/ca.crt, DIR/ca.key and DIR/memberID.crt, DIR/memberID.key for
# each ID (keys readable by their owner only).  For local clusters and
# benchmarks (make cluster, make bench); a production CA key belongs offline.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DIR ID..." >&2; exit 2; }
dir=$1
shift
mkdir -p "$dir"
cd "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -days 3650 \
    -subj "/CN=keel members CA" -keyout ca.key -out ca.crt
for id in "$@"; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -days 365 \
      -subj "/CN=keel member $id" -addext "basicConstraints=critical,CA:FALSE" \
      -addext "extendedKeyUsage=serverAuth,clientAuth" \
      -CA ca.crt -CAkey ca.key -keyout "member$id.key" -out "member$id.crt"
done
