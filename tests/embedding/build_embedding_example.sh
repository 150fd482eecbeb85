#!/usr/bin/env bash
# Builds the program in docs/embedding.md the way a user would: against a
# `meson install` of this build tree, with `pkg-config --cflags --libs keel`,
# then runs it twice over the same data dir (write, then recover).
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

# The first ```cpp block of docs/embedding.md is the program.
awk '/^```cpp$/ {inside=1; next} /^```$/ && inside {exit} inside {print}' \
  "$src/docs/embedding.md" > "$work/kv.cpp"
[ -s "$work/kv.cpp" ] || { echo "no cpp block in docs/embedding.md" >&2; exit 1; }

# The files sit under the destdir: point pkg-config's prefix there.
prefix="$work/root$(pkg-config --variable=prefix keel)"
flags="$(pkg-config --define-variable=prefix="$prefix" --cflags --libs keel)"
echo "pkg-config: $flags"
# shellcheck disable=SC2086
c++ -std=c++20 -Wall -Wextra -Werror "$work/kv.cpp" $flags -o "$work/kv"

libdir="$(pkg-config --define-variable=prefix="$prefix" --variable=libdir keel)"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/kv" "$work/data" | tee "$work/out"
grep -q "run 2: greeting=hello" "$work/out"
grep -q "run 2: role=leader mode=single" "$work/out"
