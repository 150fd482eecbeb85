#!/usr/bin/env bash
# make soak: runs the deterministic simulator over 100,000 seeds (SOAK_SEEDS
# to change it) across cluster sizes, membership changes and several groups
# per process (with and without quiescence), in chunks spread over SOAK_JOBS
# processes (default: 2, the cores of the CI machine).  Every failing seed is
# listed with its replay command; the exit status is non-zero if any failed.
# See docs/simulator.md.
set -euo pipefail
build=${1:-build}
sim="$build/tests/sim/keel_sim"
total=${SOAK_SEEDS:-100000}
jobs=${SOAK_JOBS:-2}
chunk=2000
[ -x "$sim" ] || { echo "soak: $sim not built" >&2; exit 2; }

# Share of the seeds per kind (percent), as in the default suite.
kinds=(
  "10 --nodes 1"
  "30 --nodes 3"
  "15 --nodes 5"
  "12 --nodes 1 --membership --no-lease-reads"
  "15 --nodes 3 --membership --no-lease-reads"
  "6 --nodes 3 --groups 3 --quiesce --idle-check --failover-check"
  "6 --nodes 3 --groups 3 --membership --no-lease-reads"
  "6 --nodes 1 --groups 3 --membership --quiesce --idle-check"
)
plan=$(mktemp)
logs=$(mktemp -d)
trap 'rm -rf "$plan" "$logs"' EXIT
for k in "${kinds[@]}"; do
  read -r share args <<<"$k"
  n=$(( total * share / 100 ))
  for (( first = 1; first <= n; first += chunk )); do
    count=$(( n - first + 1 < chunk ? n - first + 1 : chunk ))
    echo "$args --first-seed $first --seeds $count" >>"$plan"
  done
done

echo "soak: $total seeds in $(wc -l <"$plan") chunks over $jobs processes"
status=0
xargs -P "$jobs" -L 1 sh -c '
  log="$0/$(echo "$*" | tr " " "_").log"
  if "'"$sim"'" --keep-going "$@" >"$log" 2>&1; then tail -n 1 "$log"; else
    echo "FAILED: keel_sim $*"; grep -E "^seed [0-9]+ FAILED|^violation:|^replay:" "$log"; exit 1; fi
' "$logs" <"$plan" || status=1
if [ "$status" -ne 0 ]; then
  echo "soak: failures above (replay a seed with the command shown)" >&2
fi
exit "$status"
