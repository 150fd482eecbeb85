#!/usr/bin/env bash
# keel's single node against canonical/raft's (libraft-dev), interleaved on
# the same disk, with the disk's raw floors in every round; prints every JSON
# row, then the medians over the rounds and the ratios keel / libraft.
#   scripts/libraft-compare.sh [BUILD_DIR]
# Needs BUILD_DIR/tools/libraft-bench (built when libraft-dev and libuv1-dev
# are installed); without it, says so and exits 0.  Environment: BENCH_DIR
# (default: a temporary directory inside the build dir), BENCH_SECONDS (3),
# BENCH_RECORD_BYTES (100), COMPARE_OUTSTANDING (1,256), COMPARE_ROUNDS (3).
# Odd rounds run libraft first, even rounds keel first.
# docs/decisions/0006-libraft-comparison.md says what each row measures.
set -euo pipefail
build="${1:-build}"
here="$(dirname "$0")"
if [ ! -x "$build/tools/libraft-bench" ]; then
  echo "# libraft-bench not built (apt-get install libraft-dev libuv1-dev, then meson setup --reconfigure); skipping the libraft comparison" >&2
  exit 0
fi
parent="${BENCH_DIR:-$build}"
mkdir -p "$parent"
dir="$(mktemp -d "$parent/keel-libraft.XXXXXX")"
trap 'rm -rf "$dir"' EXIT
seconds="${BENCH_SECONDS:-3}"
bytes="${BENCH_RECORD_BYTES:-100}"
ks="${COMPARE_OUTSTANDING:-1,256}"
rounds="${COMPARE_ROUNDS:-3}"

libraft() {
  "$build/tools/libraft-bench" --dir "$dir/libraft" --seconds "$seconds" \
    --record-bytes "$bytes" --outstanding "$ks"
}
keel() {
  "$build/tools/raft-bench" --dir "$dir/keel" --seconds "$seconds" \
    --record-bytes "$bytes" --outstanding "$ks" --mode single
}
floors() {
  # raw_fdatasync, raw_direct_dsync, raw_append_fdatasync (and the WAL's
  # direct path at K=1, which wal-bench measures after them).
  "$build/tools/wal-bench" --dir "$dir/wal" --seconds "$seconds" \
    --record-bytes "$bytes" --outstanding 1 --write-path direct
  rm -rf "$dir/wal"
}

echo "# libraft vs keel single node, $rounds rounds, in $dir; $(uptime)" >&2
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then libraft; keel; else keel; libraft; fi
  floors
done | python3 "$here/bench/median_ratios.py" --rounds "$rounds"
echo "# done; $(uptime)" >&2
