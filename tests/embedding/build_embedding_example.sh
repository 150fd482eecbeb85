#!/usr/bin/env bash
# Builds the programs in docs/embedding.md the way a user would: against a
# `meson install` of this build tree, with `pkg-config --cflags --libs keel`,
# then runs each (each opens its node twice over the same data dir: write,
# then recover).
#   build_embedding_example.sh SOURCE_ROOT BUILD_ROOT
set -euo pipefail
src="$1"
build="$2"
work="$(mktemp -d "$build/embedding-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT

meson install -C "$build" --no-rebuild --quiet --destdir "$work/root" >/dev/null
pc="$(find "$work/root" -name keel.pc -print -quit)"
[ -n "$pc" ] || { echo "keel.pc was not installed" >&2; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc")"

# Each ```cpp block of docs/embedding.md is a program; its first line
# ("// NAME.cpp — ...") names the file.
awk -v dir="$work" '
  /^```cpp$/ {inside=1; file=""; next}
  /^```$/ && inside {inside=0; close(file); next}
  inside && file == "" {split($2, name, " "); file=dir "/" name[1]}
  inside {print > file}' "$src/docs/embedding.md"
for program in kv files; do
  [ -s "$work/$program.cpp" ] || { echo "no $program.cpp block in docs/embedding.md" >&2; exit 1; }
done

# The files sit under the destdir: point pkg-config's prefix there.
prefix="$work/root$(pkg-config --variable=prefix keel)"
flags="$(pkg-config --define-variable=prefix="$prefix" --cflags --libs keel)"
echo "pkg-config: $flags"
for program in kv files; do
  # shellcheck disable=SC2086
  c++ -std=c++20 -Wall -Wextra -Werror "$work/$program.cpp" $flags -o "$work/$program"
done

libdir="$(pkg-config --define-variable=prefix="$prefix" --variable=libdir keel)"
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# The durable state machine: the second run is handed nothing it holds.
"$work/files" "$work/files-data" | tee "$work/files.out"
grep -q "run 1: held index 0 at open, replayed 0, greeting=hello" "$work/files.out"
grep -Eq "run 2: held index [1-9][0-9]* at open, replayed 0, greeting=hello" "$work/files.out"

"$work/kv" "$work/data" | tee "$work/out"
grep -q "run 2: greeting=hello" "$work/out"
grep -q "run 2: role=leader mode=single" "$work/out"
grep -q "role leader in term" "$work/out"   # the observer
