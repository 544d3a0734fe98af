#!/usr/bin/env bash
# Builds and runs the whole test suite: a release build (ctest), the same tests
# under AddressSanitizer + UndefinedBehaviorSanitizer, and every reader's fuzzer for
# a bounded time. Every stage runs even when an earlier one failed; each writes its
# full log to build/test-logs/<stage>.log and the script ends with a summary (and the
# tail of each failed stage's log), so the last lines of a CI run say what broke.
#
# The run FAILS (always, not only in CI) when
#   - any test fails, a stage does not build, or a fuzzer finds a crash;
#   - the default model cannot be fetched (its tests would only skip);
#   - a reference test skips: a test named like $reference_tests (the checks against
#     transformers' fixtures in tests/reference/, the real-model loader and tokenizer
#     checks). Other skips (an AVX-512 path on a CPU without it, timings under the
#     sanitizers) are counted and listed but allowed.
# The last line counts ctest tests of both stages and fuzz targets:
#   test.sh: N passed, N failed, N skipped
#   FAST=1 scripts/test.sh            # release ctest only
#   FUZZ_SECONDS=60 scripts/test.sh   # seconds per fuzz target (default 20)
set -uo pipefail
cd "$(dirname "$0")/.."
reference_tests='TokenizerReference\.|Transformers|RealModel|MatchesIndependentPyTorch'
scripts/install_deps.sh || { echo "test.sh: installing dependencies failed" >&2; exit 1; }
model_ok=1
if ! scripts/fetch_model.sh smollm2-135m >/dev/null; then
  model_ok=0
  echo "test.sh: default model unavailable: its tests will skip, and this run fails" >&2
fi
export QUAROT_NO_PROGRESS=1
logs=build/test-logs
mkdir -p "$logs"
jobs=$(nproc)
declare -a summary=()
declare -a failed=()

# stage NAME COMMAND...: runs COMMAND with its output both on the console and in the log.
stage() {
  local name=$1
  shift
  local log=$logs/$name.log t0=$SECONDS
  echo "== $name ==" >&2
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  record "$name" "$rc" $((SECONDS - t0)) "$log"
  return "$rc"
}

# quiet_stage NAME COMMAND...: as stage, but only the log keeps the output (fuzzers print megabytes).
quiet_stage() {
  local name=$1
  shift
  local log=$logs/$name.log t0=$SECONDS
  echo "== $name (log: $log) ==" >&2
  "$@" >"$log" 2>&1
  local rc=$?
  record "$name" "$rc" $((SECONDS - t0)) "$log"
  return "$rc"
}

total_passed=0
total_failed=0
total_skipped=0

# record NAME RC SECONDS LOG: one summary line per stage, with its counts.
record() {
  local name=$1 rc=$2 secs=$3 log=$4 detail="" counted=0
  local out_of n_failed skipped ref_skips ref_count
  out_of=$(grep -Eo "tests failed out of [0-9]+" "$log" | tail -n 1 | grep -Eo "[0-9]+$")
  if [ -n "$out_of" ]; then
    n_failed=$(grep -Eo "[0-9]+ tests failed out of" "$log" | tail -n 1 | grep -Eo "^[0-9]+")
    # ctest lists skipped tests after "The following tests did not run:" as "<n> - <name> (Skipped)".
    skipped=$(grep -Ec "^[[:space:]]*[0-9]+ - .* \((Skipped|Disabled|Not Run)\)$" "$log")
    ref_skips=$(grep -E "^[[:space:]]*[0-9]+ - .* \((Skipped|Disabled|Not Run)\)$" "$log" | grep -E "$reference_tests" |
                sed -E 's/^[[:space:]]*[0-9]+ - ([^ ]+).*/\1/' | tr '\n' ' ')
    # A skipped reference test counts as failed, not skipped.
    ref_count=$(echo "$ref_skips" | wc -w)
    n_failed=$((n_failed + ref_count))
    skipped=$((skipped - ref_count))
    total_passed=$((total_passed + out_of - n_failed - skipped))
    total_failed=$((total_failed + n_failed))
    total_skipped=$((total_skipped + skipped))
    detail="$((out_of - n_failed - skipped)) passed, $n_failed failed, $skipped skipped"
    counted=1
    if [ "$ref_count" != 0 ]; then
      detail="$detail; reference tests skipped (failures): $ref_skips"
      [ "$rc" = 0 ] && rc=3
    fi
  elif grep -Eq "^run_fuzz.sh: [0-9]+ passed, [0-9]+ failed" "$log"; then
    local line
    line=$(grep -E "^run_fuzz.sh: [0-9]+ passed, [0-9]+ failed" "$log" | tail -n 1)
    total_passed=$((total_passed + $(echo "$line" | grep -Eo "[0-9]+ passed" | grep -Eo "[0-9]+")))
    total_failed=$((total_failed + $(echo "$line" | grep -Eo "[0-9]+ failed" | grep -Eo "[0-9]+")))
    detail="fuzz targets: ${line#run_fuzz.sh: }"
    counted=1
  fi
  # A stage that failed without counting a failure (it did not build) still counts
  # as one failure in the totals.
  if [ "$rc" != 0 ] && [ "$counted" = 0 ]; then
    total_failed=$((total_failed + 1))
  fi
  if [ "$rc" = 0 ]; then
    summary+=("PASS  $name (${secs}s) $detail")
  else
    summary+=("FAIL  $name (${secs}s, exit $rc) $detail")
    failed+=("$name")
  fi
}

# The CUDA part (QUAROT_CUDA=ON, sm_90a) is compiled in the release tree wherever nvcc
# is, so the CPU libraries are built once for both; its tests need a GPU and run on a GPU
# machine (scripts/cuda_test.sh, docs/cuda.md), so ctest leaves the label cuda out here.
# FAST=1 (release tests only) leaves the CUDA part out.
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
release_args=(-DQUAROT_BUILD_BENCH=OFF)
if [ -x "$nvcc" ] && [ "${FAST:-0}" != 1 ]; then release_args+=(-DQUAROT_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc"); fi

ctest_release() {
  scripts/build.sh build/release "${release_args[@]}" &&
    ctest --test-dir build/release --output-on-failure -j "$jobs" --timeout 900 -LE cuda
}

# The sanitized stage leaves out the tests labelled slow (whole-model reference runs
# such as the 40-window llama.cpp-protocol perplexity): under ASan they would take
# most of CI's time, and the release stage has already run them.
ctest_sanitized() {
  scripts/build.sh build/asan -DQUAROT_SANITIZE=ON -DQUAROT_NATIVE=OFF -DQUAROT_BUILD_BENCH=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --test-dir build/asan --output-on-failure -j "$jobs" --timeout 1800 -LE slow
}

# What the release stage compiled of the CUDA part: every CUDA check and benchmark, and
# quarot with --device cuda, for sm_90a; the KV-attention check's host half (reference and
# error bounds) needs no GPU and runs here.
cuda_build() {
  [ -x "$nvcc" ] || { echo "cuda-build: nvcc not found; the CUDA part was not compiled"; return 4; }
  grep -q '^QUAROT_CUDA:BOOL=ON' build/release/CMakeCache.txt ||
    { echo "cuda-build: build/release was configured without QUAROT_CUDA"; return 4; }
  cmake --build build/release --target test_cuda_kernels test_cuda_attention test_cuda_layer_ops test_cuda_backend \
      test_cuda_kv_attention cuda_gemm_bench cuda_layer_bench cuda_backend_bench cuda_attention_bench quarot_cli \
      -j "$jobs" &&
    build/release/tests/kernels/cuda/test_cuda_kv_attention --cpu-only > build/release/kv_attention_cpu_only.log 2>&1 &&
    echo "cuda-build: the CUDA checks and benchmarks, and quarot with --device cuda, built for sm_90a (run on a GPU" \
      "machine: scripts/cuda_test.sh); test_cuda_kv_attention --cpu-only passed"
}

stage release ctest_release
if [ "${FAST:-0}" != 1 ]; then
  stage cuda-build cuda_build
  stage asan-ubsan ctest_sanitized
  quiet_stage fuzz scripts/run_fuzz.sh "${FUZZ_SECONDS:-20}"
fi

if [ "$model_ok" = 0 ]; then
  summary+=("FAIL  default-model: scripts/fetch_model.sh smollm2-135m failed; the tests that need it skipped")
  failed+=("default-model")
  total_failed=$((total_failed + 1))
fi

for name in "${failed[@]}"; do
  [ -f "$logs/$name.log" ] || continue
  echo
  echo "==== last 60 lines of $logs/$name.log ===="
  tail -n 60 "$logs/$name.log"
done
echo
echo "==== test.sh summary ===="
printf '%s\n' "${summary[@]}"
for log in "$logs"/release.log "$logs"/asan-ubsan.log; do
  [ -f "$log" ] || continue
  skipped_list=$(grep -E "^[[:space:]]*[0-9]+ - .* \((Skipped|Disabled|Not Run)\)$" "$log" | sed -E 's/^[[:space:]]*[0-9]+ - //; s/[[:space:]]+#.*\((Skipped|Disabled|Not Run)\)$/ (\1)/' | tr '\n' ' ')
  [ -n "$skipped_list" ] && echo "skipped in $(basename "$log" .log): $skipped_list"
done
echo "test.sh: $total_passed passed, $total_failed failed, $total_skipped skipped"
[ "${#failed[@]}" = 0 ]
