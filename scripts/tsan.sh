#!/usr/bin/env bash
# Runs the threaded tests under ThreadSanitizer:  scripts/tsan.sh [build-dir]
#   TSAN_THREADS="2 3 4"  OpenMP thread counts, one full pass per count (3 splits work
#                         unevenly; 3 and 4 oversubscribe a 2-core machine, which
#                         shuffles the interleavings)
#   JOBS=N                build parallelism (default: nproc)
# GCC's libgomp is not instrumented, so TSan would report its barriers as races; this
# build uses clang with LLVM's libomp and loads Archer (LLVM's OpenMP tool that tells
# TSan about OpenMP's synchronization) through OMP_TOOL_LIBRARIES. Before the tests,
# a canary (scripts/tsan_canary.cpp) checks the setup: barrier-ordered accesses must
# give no report and a real race must give one, so "0 reports" below means something.
# Each test binary runs whole, in one process per thread count (see "Runs" below for
# the one exception). Logs go to <build-dir>/tsan-logs/<name>-t<threads>.log. Exit
# status 0 only when every run passed with no TSan report; the last line is
#   tsan.sh: N runs, N TSan reports, N failed runs
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/tsan}
jobs=${JOBS:-$(nproc)}
thread_counts=${TSAN_THREADS:-2 3 4}
cxx=$(command -v clang++ || true)
[ -n "$cxx" ] || { echo "tsan.sh: clang++ is needed (scripts/install_deps.sh installs it)" >&2; exit 2; }
archer=$(ls /usr/lib/llvm-*/lib/libarcher.so 2>/dev/null | sort -V | tail -1 || true)
[ -n "$archer" ] || { echo "tsan.sh: libarcher.so not found (Debian package libomp-dev)" >&2; exit 2; }

cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DQUAROT_TSAN=ON -DQUAROT_BUILD_BENCH=OFF > /dev/null || exit 1
# The layers whose code runs OpenMP regions (io's row-parallel dequantization runs
# inside the model loader's tests).
binaries="test_kernels test_model test_transform test_quant test_eval"
# shellcheck disable=SC2086
cmake --build "$dir" -j "$jobs" --target $binaries || exit 1
"$cxx" -O1 -g -fopenmp=libomp -fsanitize=thread scripts/tsan_canary.cpp -o "$dir/tsan_canary" || exit 1

export OMP_TOOL_LIBRARIES=$archer ARCHER_OPTIONS="verbose=1"
# ignore_noninstrumented_modules: libomp itself (and libstdc++, fmt, gtest) are not
# instrumented; Archer's documentation asks for this so their internals are not checked.
export TSAN_OPTIONS="ignore_noninstrumented_modules=1 second_deadlock_stack=1 exitcode=66"
# As ctest runs the tests (tests/CMakeLists.txt): sleeping, not spinning, workers.
export OMP_WAIT_POLICY=PASSIVE
export QUAROT_NO_PROGRESS=1
logs=$dir/tsan-logs
mkdir -p "$logs"

# Canary: the setup must see races and must not see OpenMP's barriers as races.
OMP_NUM_THREADS=4 "$dir/tsan_canary" clean > "$logs/canary-clean.log" 2>&1
clean_rc=$?
OMP_NUM_THREADS=4 "$dir/tsan_canary" race > "$logs/canary-race.log" 2>&1
race_rc=$?
if [ "$clean_rc" -ne 0 ] || grep -q "WARNING: ThreadSanitizer" "$logs/canary-clean.log" ||
   ! grep -q "Archer detected" "$logs/canary-clean.log"; then
  echo "tsan.sh: canary without a race was reported or Archer did not load (log: $logs/canary-clean.log)" >&2
  exit 1
fi
if [ "$race_rc" -ne 66 ] || ! grep -q "WARNING: ThreadSanitizer: data race" "$logs/canary-race.log"; then
  echo "tsan.sh: canary race was not reported (log: $logs/canary-race.log)" >&2
  exit 1
fi
echo "tsan.sh: canary ok (barriers understood, a real race reported)"

# Runs: one process per binary and thread count, the whole binary (threads persist
# across tests, as in a program), except BenchRun.*: they fork a child per model that
# then starts OpenMP threads. TSan supports that only when the parent had not started
# threads (otherwise it kills the child: "starting new threads after multi-threaded
# fork is not supported"), which holds for `quarot bench` but not after the binary's
# other tests, so they get a process of their own, first.
forks="BenchRun.*"
runs=0
reports=0
failed_runs=0
# run NAME THREADS BINARY FILTER: one test process, its log and a summary line.
run() {
  local name=$1 t=$2 b=$3 filter=$4
  local log=$logs/$name-t$t.log start=$SECONDS rc n tests passed skipped
  OMP_NUM_THREADS=$t "$dir/tests/$b" --gtest_filter="$filter" > "$log" 2>&1
  rc=$?
  n=$(grep -c "WARNING: ThreadSanitizer" "$log")
  tests=$(grep -Eo "^\[==========\] [0-9]+ tests? from [0-9]+ test suites? ran" "$log" | grep -Eo "^\[==========\] [0-9]+" | grep -Eo "[0-9]+$")
  passed=$(grep -Eo "^\[  PASSED  \] [0-9]+" "$log" | grep -Eo "[0-9]+$")
  skipped=$(grep -Eo "^\[  SKIPPED \] [0-9]+ tests?," "$log" | grep -Eo "[0-9]+")
  echo "tsan.sh: $name threads=$t: ${tests:-?} tests, ${passed:-0} passed, ${skipped:-0} skipped, $n TSan reports, rc $rc, $((SECONDS - start)) s"
  runs=$((runs + 1))
  reports=$((reports + n))
  [ "$rc" -ne 0 ] && failed_runs=$((failed_runs + 1))
}
for t in $thread_counts; do
  for b in $binaries; do
    exclude=""
    if [ "$b" = test_eval ]; then
      run test_eval-fork "$t" "$b" "$forks"
      exclude=$forks
    fi
    run "$b" "$t" "$b" "*${exclude:+-$exclude}"
  done
done
echo "tsan.sh: $runs runs, $reports TSan reports, $failed_runs failed runs (logs: $logs)"
[ "$reports" -eq 0 ] && [ "$failed_runs" -eq 0 ]
