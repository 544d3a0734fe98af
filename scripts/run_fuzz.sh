#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for N seconds
# from a seed corpus of valid tiny files.
#   scripts/run_fuzz.sh [seconds=30] [build_dir=build/fuzz]
# Exit status is non-zero if any target finds a crash (the reproducer is left in
# the build dir as crash-*).
set -euo pipefail
secs=${1:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${2:-$root/build/fuzz}
jobs=${QUAROT_FUZZ_JOBS:-2}
CXX=${CXX:-clang++} cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DQUAROT_FUZZ=ON -DQUAROT_SANITIZE=ON -DQUAROT_NATIVE=OFF -DQUAROT_BUILD_TESTS=OFF -DQUAROT_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target fuzz_gguf fuzz_safetensors make_fuzz_seeds -j"$jobs"
corpus=$build/corpus
mkdir -p "$corpus/gguf" "$corpus/safetensors"
"$build/fuzz/make_fuzz_seeds" "$corpus/gguf" "$corpus/safetensors"
status=0
for target in gguf safetensors; do
  echo "run_fuzz.sh: fuzz_$target for ${secs}s" >&2
  (cd "$build" && OMP_NUM_THREADS=1 "$build/fuzz/fuzz_$target" -max_total_time="$secs" -max_len=4096 \
     -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$corpus/$target") || {
    status=1
    echo "run_fuzz.sh: fuzz_$target FAILED; reproduce with: $build/fuzz/fuzz_$target <the file named in 'Test unit written to' above, in $build>" >&2
  }
done
exit $status
