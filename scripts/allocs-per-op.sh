#!/usr/bin/env bash
# Heap allocations per operation in the busy window of raft-bench's groups
# mode (docs/decisions/0050): raft-bench runs with tools/malloc_count.c
# preloaded; the count is read half a second after every group elected and
# wrote, and again WINDOW seconds later, and divided by the operations of
# that window (ops_per_s of the busy row times WINDOW: the row's rate is
# over the whole busy run, so this is an estimate within a few percent).
# Prints one JSON line.
#
#   scripts/allocs-per-op.sh [BUILD_DIR] [raft-bench flags...]
#   (default: build, --groups 1000 --outstanding 256)
set -euo pipefail
build=${1:-build}
shift || true
flags=("$@")
[[ ${#flags[@]} -eq 0 ]] && flags=(--groups 1000 --outstanding 256)
window=${WINDOW:-4}
dir=$(mktemp -d)
out=$(mktemp)
err=$(mktemp)
trap 'rm -rf "$dir" "$out" "$err"' EXIT
LD_PRELOAD="$build/tools/libkeel-malloc-count.so" "$build/tools/raft-bench" --dir "$dir" \
    --mode groups "${flags[@]}" --seconds $((window + 6)) >"$out" 2>"$err" &
pid=$!
for _ in $(seq 1 240); do
    grep -q "every group" "$err" && break
    sleep 0.25
done
grep -q "every group" "$err" || { echo "allocs-per-op: the groups never all wrote" >&2; exit 1; }
sleep 0.5
kill -USR2 "$pid"
sleep "$window"
kill -USR2 "$pid"
wait "$pid"
python3 - "$out" "$err" "$window" <<'PY'
import json, re, sys
out, err, window = sys.argv[1], sys.argv[2], float(sys.argv[3])
counts = [int(n) for n in re.findall(r"KEEL_MALLOCS (\d+)", open(err).read())]
row = next(json.loads(l) for l in open(out) if '"mode":"groups"' in l)
ops = row["ops_per_s"] * window
print(json.dumps({"bench": "allocs_per_op", "groups": row["groups"],
                  "window_s": window, "mallocs": counts[1] - counts[0],
                  "ops_estimate": round(ops),
                  "mallocs_per_op": round((counts[1] - counts[0]) / ops, 1),
                  "ops_per_s": row["ops_per_s"], "cpu_us_per_op": row["cpu_us_per_op"]}))
PY
