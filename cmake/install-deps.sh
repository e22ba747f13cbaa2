#!/usr/bin/env bash
# Installs what weft needs to build, test and benchmark, from Debian's packages (bookworm).
# Idempotent: installs only what is missing. Runs apt-get as root, or through sudo.
set -euo pipefail
packages=(
  cmake ninja-build g++ pkg-config make git
  libuv1-dev libevent-dev libboost1.81-dev libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev libglib2.0-dev
  # Real peers for the net tests (tests/net/peers_test.cc) and the HTTP benchmark.
  python3 nginx-light curl socat wrk
  # Instruction counts per benchmark row (bench/instructions.py).
  valgrind
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  echo "installing: ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
