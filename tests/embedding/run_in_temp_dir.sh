#!/usr/bin/env bash
# Runs PROGRAM [ARGS...] with a fresh temporary directory as its last
# argument, and removes the directory afterwards.
#   run_in_temp_dir.sh PROGRAM [ARGS...]
set -euo pipefail
dir="$(mktemp -d "${TMPDIR:-/tmp}/keel-example.XXXXXX")"
trap 'rm -rf "$dir"' EXIT
"$@" "$dir"
