#!/usr/bin/env bash
# keel as a user installs it: `meson install` of this build tree into a
# temporary destdir (no root, nothing outside the build dir), then, with
# nothing but `pkg-config --cflags --libs keel` pointed at that prefix:
#   - every installed header compiles (none includes one left uninstalled);
#   - keel/keel_c.h compiles as C99 and as C++;
#   - each program of docs/embedding.md (every ```cpp block, named by its
#     first line) builds and runs twice over the same data dir (write, then
#     recover): kv.cpp with an observer, files.cpp a durable state machine;
#     transport.cpp (three nodes over the application's own transport) once;
#   - the C API's example (examples/kv_c.c) builds with the C compiler and
#     runs the same way (write and snapshot, then restore).
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

# The files sit under the destdir: point pkg-config's prefix there.
prefix="$work/root$(pkg-config --variable=prefix keel)"
flags="$(pkg-config --define-variable=prefix="$prefix" --cflags --libs keel)"
cflags="$(pkg-config --define-variable=prefix="$prefix" --cflags keel)"
includedir="$(pkg-config --define-variable=prefix="$prefix" --variable=includedir keel)"
libdir="$(pkg-config --define-variable=prefix="$prefix" --variable=libdir keel)"
echo "pkg-config: $flags"

# Every installed header, with the installed headers only on the path: none
# may include a header that was not installed.
headers=$(cd "$includedir" && find keel -name '*.hpp' | sort)
[ -n "$headers" ] || { echo "no headers installed under $includedir" >&2; exit 1; }
for h in $headers; do echo "#include <$h>"; done > "$work/all_headers.cpp"
# shellcheck disable=SC2086
c++ -std=c++20 -Wall -Wextra -Werror -fsyntax-only "$work/all_headers.cpp" $cflags
echo "headers: $(echo "$headers" | wc -w) installed headers compile against the prefix"
[ -f "$includedir/keel/keel_c.h" ] || { echo "keel/keel_c.h was not installed" >&2; exit 1; }
# shellcheck disable=SC2086
echo "#include <keel/keel_c.h>" | cc -std=c99 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -x c - $cflags
# shellcheck disable=SC2086
c++ -std=c++20 -Wall -Wextra -Wpedantic -Werror -fsyntax-only "$includedir/keel/keel_c.h" $cflags

# Each ```cpp block of docs/embedding.md is a program; its first line
# ("// NAME.cpp — ...") names the file.
awk -v dir="$work" '
  /^```cpp$/ {inside=1; file=""; next}
  /^```$/ && inside {inside=0; close(file); next}
  inside && file == "" {split($2, name, " "); file=dir "/" name[1]}
  inside {print > file}' "$src/docs/embedding.md"
for program in kv files transport; do
  [ -s "$work/$program.cpp" ] || { echo "no $program.cpp block in docs/embedding.md" >&2; exit 1; }
done

for program in kv files transport; do
  # shellcheck disable=SC2086
  c++ -std=c++20 -Wall -Wextra -Werror "$work/$program.cpp" $flags -o "$work/$program"
done

export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# The durable state machine: the second run is handed nothing it holds.
"$work/files" "$work/files-data" | tee "$work/files.out"
grep -q "run 1: held index 0 at open, replayed 0, greeting=hello" "$work/files.out"
grep -Eq "run 2: held index [1-9][0-9]* at open, replayed 0, greeting=hello" "$work/files.out"

# An application's transport: three nodes in one process, a write on all.
"$work/transport" "$work/transport-data" | tee "$work/transport.out"
grep -q "replicated to 3 nodes over the application's transport" "$work/transport.out"

"$work/kv" "$work/data" | tee "$work/out"
grep -q "run 2: greeting=hello" "$work/out"
grep -q "run 2: role=leader mode=single" "$work/out"
grep -q "role leader in term" "$work/out"   # the observer

# The C example, built and run by the commands of docs/embedding.md's "The C
# API" section (its first ```sh block), as written but for the data dir, in a
# directory holding examples/kv_c.c.  PKG_CONFIG_SYSROOT_DIR makes the bare
# `pkg-config --cflags --libs keel` there point into the destdir.
mkdir -p "$work/c/examples"
cp "$src/examples/kv_c.c" "$work/c/examples/"
awk '/^## The C API$/ {section=1} section && /^```sh$/ {inside=1; next}
     inside && /^```$/ {exit} inside {print}' "$src/docs/embedding.md" > "$work/c/commands.sh"
grep -q "kv_c" "$work/c/commands.sh" || { echo "no C API commands in docs/embedding.md" >&2; exit 1; }
sed -i "s|/tmp/kv-c-data|$work/data_c|g" "$work/c/commands.sh"
(cd "$work/c" && PKG_CONFIG_SYSROOT_DIR="$work/root" bash -euo pipefail commands.sh) | tee "$work/out_c"
grep -q "run 2: greeting=hello" "$work/out_c"
grep -q "run 2: role=leader mode=single" "$work/out_c"
