#!/usr/bin/env bash
# Runs the threaded tests under ThreadSanitizer:  scripts/tsan.sh [build-dir] [ctest -R regex]
# GCC's libgomp is not instrumented, so TSan would report its barriers as races; this
# build uses clang with LLVM's libomp and loads Archer (LLVM's OpenMP tool that tells
# TSan about OpenMP's synchronization) through OMP_TOOL_LIBRARIES.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/tsan}
filter=${2:-}
cxx=$(command -v clang++ || true)
[ -n "$cxx" ] || { echo "tsan.sh: clang++ is needed (scripts/install_deps.sh installs it)" >&2; exit 2; }
archer=$(ls /usr/lib/llvm-*/lib/libarcher.so 2>/dev/null | sort -V | tail -1 || true)
[ -n "$archer" ] || { echo "tsan.sh: libarcher.so not found (Debian package libomp-dev)" >&2; exit 2; }
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DQUAROT_TSAN=ON -DQUAROT_BUILD_BENCH=OFF > /dev/null
# The layers whose code runs OpenMP regions.
targets="test_kernels test_model test_quant test_eval"
# shellcheck disable=SC2086
cmake --build "$dir" -j "$(nproc)" --target $targets
export OMP_TOOL_LIBRARIES=$archer OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
args=(--test-dir "$dir" --output-on-failure -LE slow -L "kernels|model|quant|eval")
[ -n "$filter" ] && args+=(-R "$filter")
ctest "${args[@]}"
