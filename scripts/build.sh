#!/usr/bin/env bash
# Configures and builds quarot.  scripts/build.sh [build-dir] [extra cmake args...]
#   default build dir: build/release (-O3 -march=native). Use -DQUAROT_NATIVE=OFF for a
#   portable binary, -DQUAROT_SANITIZE=ON for ASan+UBSan, -DQUAROT_CUDA=ON for the CUDA part.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/release}; shift || true
jobs=$(nproc)
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$dir" -j "$jobs"
