#!/usr/bin/env bash
# Checks the runtime's lock discipline with Clang's thread-safety analysis:
# every source of lib/runtime/ is parsed by clang-14 with -Wthread-safety as
# an error (lib/runtime/thread_annotations.hpp says what the annotations
# mean).  Syntax only, nothing is built: the standard and Asio headers are
# precompiled once, then the sources are checked in parallel.
#
#   scripts/thread-safety.sh [--jobs N]
#
# `make test` runs it (the meson test `thread_safety`).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "thread-safety: unknown argument $1" >&2; exit 2 ;;
  esac
done

if ! command -v clang++-14 >/dev/null; then
  echo "thread-safety: clang++-14 not found (scripts/install-deps.sh installs clang-14)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

flags=(-std=c++20 -D_GNU_SOURCE -DBOOST_ALL_NO_LIB -pthread)
# The external headers the runtime includes, parsed once.
cat >"$work/external.hpp" <<'EOF'
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>
EOF
clang++-14 "${flags[@]}" -x c++-header "$work/external.hpp" -o "$work/external.hpp.pch"

cd "$root"
ls lib/runtime/*.cpp | xargs -P "$jobs" -n 1 clang++-14 "${flags[@]}" \
  -include-pch "$work/external.hpp.pch" -fsyntax-only -Ilib -Ilib/include -Iwal/include \
  -Wthread-safety -Wthread-safety-beta -Werror=thread-safety -Werror=thread-safety-beta
echo "thread-safety: lib/runtime is clean"
