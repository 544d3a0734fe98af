#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan; fuzz/CMakeLists.txt lists them,
# one per reader of outside input) and runs each for N seconds from its committed seed
# corpus fuzz/corpus/<target>/ (new inputs found go to <build>/corpus/<target>/).
#   scripts/run_fuzz.sh [seconds per target=20] [build_dir=build/fuzz]
#   QUAROT_FUZZ_TARGETS="gguf hellaswag" scripts/run_fuzz.sh 60   # a subset
#   scripts/run_fuzz.sh --reseed       # rewrite fuzz/corpus/ with make_fuzz_seeds
# Exit status is non-zero if any target finds a crash, a leak, a timeout or an
# uncaught exception (the reproducer is left in the build dir as crash-*/leak-*/timeout-*;
# turn it into a regression test). The last line counts targets as passed/failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
reseed=0
if [ "${1:-}" = --reseed ]; then reseed=1; shift; fi
secs=${1:-20}
build=${2:-$root/build/fuzz}
jobs=${QUAROT_FUZZ_JOBS:-$(nproc)}
all_targets="gguf safetensors gguf_model gguf_tokenizer hf_tokenizer hf_checkpoint quantized_model hellaswag calibration_text"
targets=${QUAROT_FUZZ_TARGETS:-$all_targets}
CXX=${CXX:-clang++} cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DQUAROT_FUZZ=ON -DQUAROT_SANITIZE=ON -DQUAROT_NATIVE=OFF -DQUAROT_BUILD_TESTS=OFF -DQUAROT_BUILD_BENCH=OFF >/dev/null
if [ "$reseed" = 1 ]; then
  cmake --build "$build" --target make_fuzz_seeds -j"$jobs"
  rm -rf "$root/fuzz/corpus"
  "$build/fuzz/make_fuzz_seeds" "$root/fuzz/corpus"
  find "$root/fuzz/corpus" -type f | sort | xargs ls -l
  exit 0
fi
cmake --build "$build" --target $(printf 'fuzz_%s ' $targets) -j"$jobs"
passed=0 failed=0
for target in $targets; do
  seeds=$root/fuzz/corpus/$target
  work=$build/corpus/$target
  mkdir -p "$work"
  [ -d "$seeds" ] || { echo "run_fuzz.sh: no seed corpus $seeds" >&2; failed=$((failed + 1)); continue; }
  echo "run_fuzz.sh: fuzz_$target for ${secs}s" >&2
  t0=$SECONDS
  if (cd "$build" && OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1 "$build/fuzz/fuzz_$target" \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$work" "$seeds"); then
    passed=$((passed + 1))
    echo "run_fuzz.sh: fuzz_$target OK ($((SECONDS - t0))s)" >&2
  else
    failed=$((failed + 1))
    echo "run_fuzz.sh: fuzz_$target FAILED; reproduce with: $build/fuzz/fuzz_$target <the file named in 'Test unit written to' above, in $build>" >&2
  fi
done
echo "run_fuzz.sh: $passed passed, $failed failed"
[ "$failed" = 0 ]
