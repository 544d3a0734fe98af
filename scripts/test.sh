#!/usr/bin/env bash
# Builds and runs the whole test suite: a release build (ctest), the same tests
# under AddressSanitizer + UndefinedBehaviorSanitizer, and each file-parser
# fuzzer for a bounded time. Exits non-zero on any failure.
#   FAST=1 scripts/test.sh   # release ctest only
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/fetch_model.sh smollm2-135m >/dev/null || echo "test.sh: default model unavailable; its tests will skip" >&2
export QUAROT_NO_PROGRESS=1
scripts/build.sh build/release -DQUAROT_BUILD_BENCH=OFF
ctest --test-dir build/release --output-on-failure -j "$(nproc)" --timeout 900
[ "${FAST:-0}" = 1 ] && exit 0
echo "== ASan + UBSan ==" >&2
scripts/build.sh build/asan -DQUAROT_SANITIZE=ON -DQUAROT_NATIVE=OFF -DQUAROT_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure -j "$(nproc)" --timeout 1800 -LE slow
if [ -x scripts/run_fuzz.sh ]; then
  echo "== fuzzing the file parsers ==" >&2
  scripts/run_fuzz.sh "${FUZZ_SECONDS:-30}"
fi
