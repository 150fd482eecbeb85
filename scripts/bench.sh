#!/usr/bin/env bash
# Runs keel's benchmarks and prints their JSON lines (called by `make bench`).
#   scripts/bench.sh [BUILD_DIR]
# Environment: BENCH_DIR (a directory on the disk to measure; default: a
# temporary directory inside the build dir, not /tmp, which may be tmpfs),
# BENCH_SECONDS (3), BENCH_RECORD_BYTES (100), BENCH_OUTSTANDING (1,16,256),
# BENCH_TLS_SECONDS (8: per mode and K, over 4 interleaved rounds),
# BENCH_GROUPS (100: raft-bench --mode groups);
# COMPARE_ROUNDS, COMPARE_OUTSTANDING for scripts/libraft-compare.sh.
set -euo pipefail
build="${1:-build}"
parent="${BENCH_DIR:-$build}"
mkdir -p "$parent"
dir="$(mktemp -d "$parent/keel-bench.XXXXXX")"
trap 'rm -rf "$dir"' EXIT

echo "# wal-bench in $dir" >&2
"$build/tools/wal-bench" --dir "$dir/wal" \
  --seconds "${BENCH_SECONDS:-3}" \
  --record-bytes "${BENCH_RECORD_BYTES:-100}" \
  --outstanding "${BENCH_OUTSTANDING:-1,16,256}" \
  --recovery

if [ -x "$build/tools/raft-bench" ]; then
  echo "# raft-bench in $dir" >&2
  common=(--seconds "${BENCH_SECONDS:-3}" --record-bytes "${BENCH_RECORD_BYTES:-100}")
  # wal and single interleaved per K, then the 5 s idle check.
  "$build/tools/raft-bench" --dir "$dir/raft" "${common[@]}" \
    --outstanding "${BENCH_OUTSTANDING:-1,16,256}" --mode all
  # Snapshots every 1024 entries must not stall the write path.
  "$build/tools/raft-bench" --dir "$dir/raft" "${common[@]}" \
    --outstanding 256 --mode single --snapshot-every 1024
  # Nor must large ones (64 MiB every 1,000,000 entries, a few in 6 s):
  # written back as they are written, deleted in steps (decision 0052).
  "$build/tools/raft-bench" --dir "$dir/raft" --seconds 6 \
    --record-bytes "${BENCH_RECORD_BYTES:-100}" --outstanding 256 --mode single \
    --snapshot-every 1000000 --snapshot-bytes 67108864
  # The floor cluster3 is compared with, measured right before it: the disk
  # drifts within a run.  Labelled, so that it is not taken for wal-bench's.
  "$build/tools/wal-bench" --dir "$dir/floor" --seconds "${BENCH_SECONDS:-3}" \
    --record-bytes "${BENCH_RECORD_BYTES:-100}" --outstanding 1 --write-path buffered \
    | grep '"raw_fdatasync"' | sed 's/^{/{"label":"before_cluster3",/'
  "$build/tools/raft-bench" --dir "$dir/raft" "${common[@]}" \
    --outstanding "${BENCH_OUTSTANDING:-1,16,256}" --mode cluster3
  # Many groups: three keel::Host in this process serving 100 groups, K=256
  # spread over them, then the idle row (docs/groups.md, "Figures"; about 20 s).
  "$build/tools/raft-bench" --dir "$dir/raft" "${common[@]}" \
    --outstanding 256 --mode groups --groups "${BENCH_GROUPS:-100}"
  # The cost of mutual TLS between members: cluster3 in plain TCP and in TLS,
  # interleaved, then the ratios TLS / plain (goal: ops_ratio >= 0.85 at K=256).
  echo "# raft-bench cluster3 plain vs mutual TLS in $dir" >&2
  "$(dirname "$0")/make-peer-certs.sh" "$dir/certs" 1 2 3 2>/dev/null
  "$build/tools/raft-bench" --dir "$dir/raft" --seconds "${BENCH_TLS_SECONDS:-8}" \
    --record-bytes "${BENCH_RECORD_BYTES:-100}" --outstanding 1,256 --rounds 4 \
    --mode cluster3-tls --tls-dir "$dir/certs"
fi

# keel's single node against canonical/raft's, when libraft-dev is installed
# (tools/libraft_bench.c): interleaved rounds, medians, ratios keel/libraft.
"$(dirname "$0")/libraft-compare.sh" "$build"

# The disk floor cluster3 runs on: three fdatasync loops at once, one file
# each (three nodes sharing this disk).  Compare with the lone floor before cluster3.
echo "# three raw fdatasync loops at once in $dir" >&2
for n in 1 2 3; do
  "$build/tools/wal-bench" --dir "$dir/raw3-$n" --seconds "${BENCH_SECONDS:-3}" \
    --record-bytes "${BENCH_RECORD_BYTES:-100}" --outstanding 1 --write-path buffered \
    | grep '"raw_fdatasync"' | sed 's/^{/{"label":"concurrent_3",/' &
done
wait

# Does the disk stall under concurrent durable writes (three members' WALs
# share it in cluster3 and groups)?  Decision 0051.
echo "# disk stalls with 1, 2 and 3 O_DIRECT|O_DSYNC writers in $dir" >&2
"$(dirname "$0")/disk-stalls.py" --dir "$dir" --writers 1,2,3 --seconds "${BENCH_SECONDS:-3}"
