#!/usr/bin/env bash
# Installs the Debian packages keel needs to build, test and run; with --bench,
# also those `make bench` needs (wrk, etcd-server).  Idempotent and quick when everything is present: it only calls apt-get
# when a package is missing (dpkg-query is a few milliseconds).
set -euo pipefail

packages=(
  gcc g++ make meson ninja-build pkgconf
  libboost1.81-dev libfmt-dev catch2 nlohmann-json3-dev libcli11-dev libspdlog-dev
  libssl-dev openssl
  # zlib's crc32() checksums snapshot files.
  zlib1g-dev
  curl procps python3
  # The status page's browser test (tests/daemon/raftd_ui_test.py): headless
  # Chromium, and certutil for the NSS database that trusts its test CA.
  chromium libnss3-tools
  # The fuzzers (libFuzzer) are built with clang in their own build directory.
  clang-14 libclang-rt-14-dev
  # scripts/plot-bench.py draws docs/benchmarks.md's plots; its test runs it.
  gnuplot-nox
)
if [ "${1:-}" = "--bench" ]; then
  # The HTTP load client, and etcd as scripts/http-bench.sh's reference.
  packages+=(wrk etcd-server)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
