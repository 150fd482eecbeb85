#!/usr/bin/env bash
# HTTP load benchmark: raftd single-node and three-node, and etcd 3.4 (Debian
# etcd-server, its /v3/kv/put JSON gateway) as a reference, with the same
# client (wrk), connections and value size, in the same run.
#   scripts/http-bench.sh [BUILD_DIR]
# Environment: BENCH_SECONDS (10), VALUE_BYTES (100), CONNECTIONS ("64 1"),
# BENCH_DIR (data dirs; default inside the build dir, on the real disk).
# Installs wrk and etcd-server if missing (bench only; not test dependencies).
set -euo pipefail
build=${1:-build}
raftd=$build/daemon/raftd
seconds=${BENCH_SECONDS:-10}
export VALUE_BYTES=${VALUE_BYTES:-100}
connections=${CONNECTIONS:-"64 1"}
here=$(cd "$(dirname "$0")" && pwd)

missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/bin/etcd ] || missing+=(etcd-server)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
[ -x "$raftd" ] || { echo "$raftd not built" >&2; exit 1; }

parent=${BENCH_DIR:-$build}
mkdir -p "$parent"
dir=$(mktemp -d "$parent/http-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

wait_http() {  # url
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $1" >&2; return 1
}

# One wrk run; prints a markdown table row.
run_wrk() {  # label url lua conns
  local label=$1 url=$2 lua=$3 conns=$4 threads=2 out
  [ "$conns" -lt 2 ] && threads=1
  out=$(wrk -t"$threads" -c"$conns" -d"${seconds}s" --latency -s "$lua" "$url")
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  echo "| $label | $conns | ${rps} | ${p50} | ${p99} | ${non2xx:-0} |"
}

echo "| target | connections | PUT req/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|---|"

# raftd, single node.
"$raftd" --data-dir "$dir/single" --http 127.0.0.1:18180 --raft 127.0.0.1:17180 --log-level warn \
  2>"$dir/single.log" & pids+=($!)
wait_http http://127.0.0.1:18180/readyz
for c in $connections; do run_wrk "raftd 1 node" http://127.0.0.1:18180 "$here/bench/raftd_put.lua" "$c"; done
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" || true

# raftd, three nodes (load on the leader).
members=()
for n in 1 2 3; do members+=(--member "$n,127.0.0.1:1719$n,127.0.0.1:1819$n"); done
for n in 1 2 3; do
  "$raftd" --id "$n" --data-dir "$dir/n$n" "${members[@]}" --log-level warn 2>"$dir/n$n.log" & pids+=($!)
done
for n in 1 2 3; do wait_http "http://127.0.0.1:1819$n/readyz"; done
leader=$(curl -fsS http://127.0.0.1:18191/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])')
for c in $connections; do run_wrk "raftd 3 nodes" "http://127.0.0.1:1819$leader" "$here/bench/raftd_put.lua" "$c"; done
for p in "${pids[@]: -3}"; do kill -TERM "$p" 2>/dev/null || true; done

# etcd 3.4, single member, default settings.
/usr/bin/etcd --data-dir "$dir/etcd" --listen-client-urls http://127.0.0.1:12379 \
  --advertise-client-urls http://127.0.0.1:12379 --listen-peer-urls http://127.0.0.1:12380 \
  --log-level error >"$dir/etcd.log" 2>&1 & pids+=($!)
wait_http http://127.0.0.1:12379/health
for c in $connections; do run_wrk "etcd 3.4 1 node" http://127.0.0.1:12379 "$here/bench/etcd_put.lua" "$c"; done
