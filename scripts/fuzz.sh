#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/targets.txt with clang-14 in a
# build directory of their own (the main build is g++, which has no
# libFuzzer) and runs each on its corpus for a bounded time.
#
#   scripts/fuzz.sh [--build-dir DIR] [--seconds N] [--update-corpus] [TARGET...]
#
# --seconds N        per target (default 30); `make fuzz` runs them longer
# --update-corpus    merge what each run found into tests/fuzz/corpus/<target>/
# KEEL_SEED=n        libFuzzer's -seed (default: drawn, and printed)
#
# A crash, a leak, a timeout or an out-of-memory fails the run; the seed,
# the reproducer's path and the command that replays it are printed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
self="$root/scripts/fuzz.sh"
build="$root/build-fuzz"
seconds=30
update=0
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --update-corpus) update=1; shift ;;
    -h|--help) sed -n '2,14p' "$self"; exit 0 ;;
    *) only+=("$1"); shift ;;
  esac
done

if ! command -v clang++-14 >/dev/null; then
  echo "fuzz: clang++-14 not found (scripts/install-deps.sh installs clang-14 and libclang-rt-14-dev)" >&2
  exit 1
fi

# name -> source, from the one list.
declare -A sources=()
names=()
while read -r name source; do
  case "$name" in ''|'#'*) continue ;; esac
  sources[$name]=$source
  names+=("$name")
done < "$root/tests/fuzz/targets.txt"
if [ ${#only[@]} -gt 0 ]; then
  for name in "${only[@]}"; do
    [ -n "${sources[$name]:-}" ] || { echo "fuzz: no target '$name' in tests/fuzz/targets.txt" >&2; exit 1; }
  done
  names=("${only[@]}")
fi

if [ ! -f "$build/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 meson setup "$build" "$root" -Dfuzzing=true -Dtests=false \
    --buildtype=plain -Db_ndebug=false >"$build.setup.log" 2>&1 ||
    { cat "$build.setup.log" >&2; exit 1; }
fi
targets=()
for name in "${names[@]}"; do targets+=("${name}_fuzzer"); done
meson compile -C "$build" "${targets[@]}" >"$build/compile.log" 2>&1 ||
  { tail -n 50 "$build/compile.log" >&2; exit 1; }

seed=${KEEL_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "fuzz: seed $seed, ${seconds}s per target (replay with KEEL_SEED=$seed $self --seconds $seconds ${names[*]})"
failed=0
for name in "${names[@]}"; do
  binary="$build/tests/fuzz/${name}_fuzzer"
  corpus="$root/tests/fuzz/corpus/$name"
  work="$build/work/$name"
  artifacts="$build/artifacts/$name"
  rm -rf "$work"
  mkdir -p "$work" "$artifacts" "$corpus"
  log="$build/$name.log"
  # New inputs go to $work; the corpus in the repository is only read.
  status=0
  "$binary" -seed="$seed" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "$corpus" >"$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  if [ "$status" -ne 0 ]; then
    failed=1
    echo "fuzz: $name FAILED (exit $status, seed $seed); the end of $log:" >&2
    grep -v '^#[0-9]' "$log" | tail -n 40 >&2
    reproducer=$(grep -o "Test unit written to [^ ]*" "$log" | tail -n 1 | sed 's/Test unit written to //')
    if [ -n "$reproducer" ]; then
      echo "fuzz: reproducer $reproducer" >&2
      echo "fuzz: replay with $binary $reproducer" >&2
    fi
    continue
  fi
  echo "fuzz: $name ok, $runs inputs, corpus $(ls "$corpus" | wc -l) + $(ls "$work" | wc -l) new"
  if [ "$update" -eq 1 ] && [ -n "$(ls "$work")" ]; then
    "$binary" -merge=1 "$corpus" "$work" >"$build/$name.merge.log" 2>&1
    echo "fuzz: $name corpus now $(ls "$corpus" | wc -l) inputs"
  fi
done
exit $failed
