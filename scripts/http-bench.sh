#!/usr/bin/env bash
# HTTP load benchmark: raftd single-node and three-node, and etcd 3.4 (Debian
# etcd-server, its /v3/kv/put JSON gateway) single-member and three-member as
# the reference, with the same client (wrk), connections and value size, in
# the same run.  The two three-member clusters are up side by side and
# measured alternately (raftd, etcd, raftd, etcd...), then compared as ratios
# of the medians; likewise raftd with HTTPS and a bearer token against plain
# HTTP (A B A B).  One JSON line per measurement on stdout ({"bench":"http",
# ...}, then trickle-bench.py's); the same as markdown tables on stderr.
#   scripts/http-bench.sh [BUILD_DIR]
# Environment: BENCH_SECONDS (10), VALUE_BYTES (100), CONNECTIONS ("1 16 64":
# raftd and etcd), CLUSTER_ROUNDS (2: alternating rounds of the three-member
# clusters per connection count), TLS_CONNECTIONS ("64 1": HTTPS + token
# against plain), BENCH_DIR (data dirs; default inside the build dir, on the
# real disk), TRICKLE_SECONDS (3: each round of scripts/trickle-bench.py).
# Installs wrk and etcd-server if missing (bench only; not test dependencies).
set -euo pipefail
build=${1:-build}
raftd=$build/daemon/raftd
seconds=${BENCH_SECONDS:-10}
export VALUE_BYTES=${VALUE_BYTES:-100}
connections=${CONNECTIONS:-"1 16 64"}
cluster_rounds=${CLUSTER_ROUNDS:-2}
tls_connections=${TLS_CONNECTIONS:-"64 1"}
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

wait_http() {  # url [curl options...]
  # shellcheck disable=SC2086
  for _ in $(seq 1 300); do curl -fsS -o /dev/null $1 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $1" >&2; return 1
}

# wrk's "1.23ms" / "456.00us" / "1.2s" in microseconds.
to_us() { awk -v t="$1" 'BEGIN { n = t + 0; if (t ~ /us$/) print n; else if (t ~ /ms$/) print n * 1000; else print n * 1e6 }'; }

# One wrk run; prints a JSON line (stdout) and a markdown table row (stderr),
# and sets RPS and P50_US.  `target` names the series in the JSON.
run_wrk() {  # label target url lua conns
  local label=$1 target=$2 url=$3 lua=$4 conns=$5 threads=2 out
  [ "$conns" -lt 2 ] && threads=1
  out=$(wrk -t"$threads" -c"$conns" -d"${seconds}s" --latency -s "$lua" "$url")
  local p50 p99 non2xx
  RPS=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  P50_US=$(to_us "$p50")
  printf '{"bench":"http","target":"%s","connections":%d,"value_bytes":%d,"req_per_s":%s,"p50_us":%s,"p99_us":%s,"non_2xx":%d}\n' \
    "$target" "$conns" "$VALUE_BYTES" "${RPS:-0}" "${P50_US:-0}" "$(to_us "${p99:-0}")" "${non2xx:-0}"
  echo "| $label | $conns | ${RPS} | ${p50} | ${p99} | ${non2xx:-0} |" >&2
}

# "A_RPS" "B_RPS" "A_P50" "B_P50" (space-separated rounds) -> the ratios of
# the medians, A / B: "req_per_s p50".
median_ratios() {
  awk -v ar="$1" -v br="$2" -v ap="$3" -v bp="$4" '
    function med(s,   a, n, i, j, t) {
      n = split(s, a, " ")
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    BEGIN { printf "%.3f %.3f", med(ar) / med(br), med(ap) / med(bp) }'
}

echo "| target | connections | PUT req/s | p50 | p99 | non-2xx |" >&2
echo "|---|---|---|---|---|---|" >&2

# raftd, single node.
"$raftd" --data-dir "$dir/single" --http 127.0.0.1:18180 --raft 127.0.0.1:17180 --log-level warn \
  2>"$dir/single.log" & pids+=($!)
wait_http http://127.0.0.1:18180/readyz
for c in $connections; do run_wrk "raftd 1 node" raftd_1 http://127.0.0.1:18180 "$here/bench/raftd_put.lua" "$c"; done
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" || true

# Three members each: raftd and etcd 3.4 (defaults) side by side, load on
# each one's leader, runs alternating per connection count.
members=(--cluster-id "$(openssl rand -hex 16)")  # founders share a cluster id
for n in 1 2 3; do members+=(--member "$n,127.0.0.1:1719$n,127.0.0.1:1819$n"); done
for n in 1 2 3; do
  "$raftd" --id "$n" --data-dir "$dir/n$n" "${members[@]}" --log-level warn 2>"$dir/n$n.log" & pids+=($!)
done
initial=e1=http://127.0.0.1:21380,e2=http://127.0.0.1:22380,e3=http://127.0.0.1:23380
for n in 1 2 3; do
  /usr/bin/etcd --name "e$n" --data-dir "$dir/e$n" --listen-client-urls "http://127.0.0.1:2${n}379" \
    --advertise-client-urls "http://127.0.0.1:2${n}379" --listen-peer-urls "http://127.0.0.1:2${n}380" \
    --initial-advertise-peer-urls "http://127.0.0.1:2${n}380" --initial-cluster "$initial" \
    --initial-cluster-state new --log-level error >"$dir/e$n.log" 2>&1 & pids+=($!)
done
for n in 1 2 3; do wait_http "http://127.0.0.1:1819$n/readyz"; wait_http "http://127.0.0.1:2${n}379/health"; done
leader=$(curl -fsS http://127.0.0.1:18191/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])')
etcd_leader=""
for n in 1 2 3; do  # the member whose own id is the leader's
  if curl -fsS -X POST "http://127.0.0.1:2${n}379/v3/maintenance/status" -d '{}' |
      python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["leader"] != d["header"]["member_id"])'; then
    etcd_leader=$n
  fi
done
[ -n "$etcd_leader" ] || { echo "etcd: no leader" >&2; exit 1; }
cluster_summary=()
for c in $connections; do
  a_rps=(); a_p50=(); b_rps=(); b_p50=()
  for _ in $(seq 1 "$cluster_rounds"); do
    run_wrk "raftd 3 nodes" raftd_3 "http://127.0.0.1:1819$leader" "$here/bench/raftd_put.lua" "$c"
    a_rps+=("$RPS"); a_p50+=("$P50_US")
    run_wrk "etcd 3.4 3 nodes" etcd_3 "http://127.0.0.1:2${etcd_leader}379" "$here/bench/etcd_put.lua" "$c"
    b_rps+=("$RPS"); b_p50+=("$P50_US")
  done
  read -r rps_ratio p50_ratio <<<"$(median_ratios "${a_rps[*]}" "${b_rps[*]}" "${a_p50[*]}" "${b_p50[*]}")"
  printf '{"bench":"http","compare":"raftd_3/etcd_3","connections":%d,"rounds":%d,"req_per_s_ratio":%s,"p50_ratio":%s}\n' \
    "$c" "$cluster_rounds" "$rps_ratio" "$p50_ratio"
  cluster_summary+=("| $c | $rps_ratio | $p50_ratio |")
done
echo >&2
echo "| connections | raftd 3 nodes / etcd 3 nodes: req/s | raftd 3 nodes / etcd 3 nodes: p50 |" >&2
echo "|---|---|---|" >&2
printf '%s\n' "${cluster_summary[@]}" >&2
echo >&2
for p in "${pids[@]: -6}"; do kill -TERM "$p" 2>/dev/null || true; done
wait "${pids[@]: -6}" 2>/dev/null || true

# etcd 3.4, single member, default settings.
/usr/bin/etcd --data-dir "$dir/etcd" --listen-client-urls http://127.0.0.1:12379 \
  --advertise-client-urls http://127.0.0.1:12379 --listen-peer-urls http://127.0.0.1:12380 \
  --log-level error >"$dir/etcd.log" 2>&1 & pids+=($!)
wait_http http://127.0.0.1:12379/health
for c in $connections; do run_wrk "etcd 3.4 1 node" etcd_1 http://127.0.0.1:12379 "$here/bench/etcd_put.lua" "$c"; done
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" || true

# raftd 1 node, HTTPS + bearer token (B) against plain HTTP (A): both nodes
# up at once, runs alternating A B A B per connection count.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" -subj /CN=raftd-bench \
  -addext 'subjectAltName=IP:127.0.0.1' 2>/dev/null
token=$(openssl rand -hex 32)
(umask 077; printf 'write %s\n' "$token" >"$dir/tokens")
"$raftd" --data-dir "$dir/plain" --http 127.0.0.1:18180 --raft 127.0.0.1:17180 --log-level warn \
  2>"$dir/plain.log" & pids+=($!)
"$raftd" --data-dir "$dir/secure" --http 127.0.0.1:18181 --raft 127.0.0.1:17181 --log-level warn \
  --http-cert "$dir/cert.pem" --http-key "$dir/key.pem" --auth-tokens "$dir/tokens" \
  2>"$dir/secure.log" & pids+=($!)
wait_http http://127.0.0.1:18180/readyz
wait_http "https://127.0.0.1:18181/readyz --cacert $dir/cert.pem"
echo >&2
echo "| raftd 1 node | connections | PUT req/s | p50 | p99 | non-2xx |" >&2
echo "|---|---|---|---|---|---|" >&2
summary=()
for c in $tls_connections; do
  a_rps=(); a_p50=(); b_rps=(); b_p50=()
  for _ in 1 2; do
    run_wrk "plain HTTP" raftd_1_plain http://127.0.0.1:18180 "$here/bench/raftd_put.lua" "$c"
    a_rps+=("$RPS"); a_p50+=("$P50_US")
    TOKEN=$token run_wrk "HTTPS + token" raftd_1_https_token https://127.0.0.1:18181 "$here/bench/raftd_put.lua" "$c"
    b_rps+=("$RPS"); b_p50+=("$P50_US")
  done
  awk -v c="$c" -v ar="${a_rps[*]}" -v br="${b_rps[*]}" -v ap="${a_p50[*]}" -v bp="${b_p50[*]}" '
    function mid(s,   a, n) { n = split(s, a, " "); return (a[1] + a[n]) / 2 }  # median of two
    BEGIN { printf "{\"bench\":\"http\",\"compare\":\"https_token/plain\",\"connections\":%d,\"req_per_s_ratio\":%.3f,\"p50_ratio\":%.3f}\n", c, mid(br) / mid(ar), mid(bp) / mid(ap) }'
  summary+=("$(awk -v c="$c" -v ar="${a_rps[*]}" -v br="${b_rps[*]}" -v ap="${a_p50[*]}" -v bp="${b_p50[*]}" '
    function mid(s,   a, n) { n = split(s, a, " "); return (a[1] + a[n]) / 2 }  # median of two
    BEGIN { printf "| %s | %.3f | %.3f |", c, mid(br) / mid(ar), mid(bp) / mid(ap) }')")
done
echo >&2
echo "| connections | HTTPS+token / plain: req/s | HTTPS+token / plain: p50 |" >&2
echo "|---|---|---|" >&2
printf '%s\n' "${summary[@]}" >&2
for p in "${pids[@]: -2}"; do kill -TERM "$p" 2>/dev/null || true; done

# A normal client's PUT latency while 1,000 connections trickle headers.
echo >&2
BENCH_DIR="$parent" python3 "$here/trickle-bench.py" "$raftd" --rounds 2 --seconds "${TRICKLE_SECONDS:-3}"
