#!/usr/bin/env bash
# Starts a local three-node raftd cluster in the background, its members
# talking mutual TLS:
#   node N: HTTP 127.0.0.1:808N, Raft 127.0.0.1:708N, data ./raftd-cluster/nodeN,
#   log ./raftd-cluster/nodeN.log; the cluster's CA and member certificates in
#   ./raftd-cluster/certs (made on first start by scripts/make-peer-certs.sh),
#   its id in ./raftd-cluster/cluster_id.
# Usage: scripts/cluster.sh [BUILD_DIR]      start (make cluster)
#        scripts/cluster.sh --stop           stop it (SIGTERM: graceful)
# Restarting after a stop reuses the data dirs (bootstrap flags are then ignored);
# `rm -rf raftd-cluster` for a fresh cluster.
set -euo pipefail
dir=raftd-cluster
pids_file=$dir/pids

if [ "${1:-}" = "--stop" ]; then
  if [ ! -f "$pids_file" ]; then echo "no cluster running ($pids_file missing)"; exit 0; fi
  # shellcheck disable=SC2046
  kill -TERM $(cat "$pids_file") 2>/dev/null || true
  rm -f "$pids_file"
  echo "sent SIGTERM to the cluster's nodes"
  exit 0
fi

build=${1:-build}
raftd=$build/daemon/raftd
[ -x "$raftd" ] || { echo "$raftd not built (make build)" >&2; exit 1; }
if [ -f "$pids_file" ]; then
  echo "a cluster seems to be running (PIDs $(tr '\n' ' ' < "$pids_file")); scripts/cluster.sh --stop first" >&2
  exit 1
fi
mkdir -p "$dir"
certs=$dir/certs
[ -f "$certs/ca.crt" ] || "$(dirname "$0")/make-peer-certs.sh" "$certs" 1 2 3
# The founders share one cluster id (kept: later starts pass the same one).
[ -f "$dir/cluster_id" ] || openssl rand -hex 16 >"$dir/cluster_id"
members=(--cluster-id "$(cat "$dir/cluster_id")")
for n in 1 2 3; do members+=(--member "$n,127.0.0.1:708$n,127.0.0.1:808$n"); done
for n in 1 2 3; do
  nohup "$raftd" --id "$n" --data-dir "$dir/node$n" "${members[@]}" \
    --peer-cert "$certs/member$n.crt" --peer-key "$certs/member$n.key" --peer-ca "$certs/ca.crt" \
    >>"$dir/node$n.log" 2>&1 &
  echo $! >>"$pids_file"
done

# Wait (bounded) until every node knows a leader.
for _ in $(seq 1 100); do
  ready=0
  for n in 1 2 3; do
    if curl -fsS -o /dev/null "http://127.0.0.1:808$n/readyz" 2>/dev/null; then ready=$((ready + 1)); fi
  done
  [ "$ready" -eq 3 ] && break
  sleep 0.1
done

echo "raftd cluster $(cat "$dir/cluster_id") (members over mutual TLS, certificates in $certs): PIDs $(tr '\n' ' ' < "$pids_file")"
for n in 1 2 3; do echo "  node $n: http://127.0.0.1:808$n  raft 127.0.0.1:708$n  log $dir/node$n.log"; done
echo "status page: http://127.0.0.1:8081/ui (any node's)"
echo "try:  curl -L -X PUT --json '{\"value\":\"hello\"}' http://127.0.0.1:8081/v1/kv/greeting"
echo "      curl http://127.0.0.1:8082/v1/status"
echo "stop: scripts/cluster.sh --stop     (or: kill \$(cat $pids_file))"
