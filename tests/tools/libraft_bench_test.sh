#!/usr/bin/env bash
# libraft-bench runs a one-voter libraft and prints one JSON row per K with
# raft-bench's fields (built, and run here, only where libraft-dev is installed).
#   libraft_bench_test.sh path/to/libraft-bench
set -euo pipefail
dir="$(mktemp -d "${TMPDIR:-/tmp}/libraft-bench-test.XXXXXX")"
trap 'rm -rf "$dir"' EXIT
out="$("$1" --dir "$dir" --seconds 0.3 --outstanding 1,4)"
echo "$out"
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(line) for line in sys.argv[1].splitlines()]
assert [r["outstanding"] for r in rows] == [1, 4], rows
for r in rows:
    assert r["bench"] == "libraft" and r["mode"] == "single", r
    assert r["ops_per_s"] > 0 and 0 < r["p50_us"] <= r["p99_us"], r
    assert "failures" not in r, r
PY
[ -z "$(ls -A "$dir")" ] || { echo "left files in $dir" >&2; exit 1; }
