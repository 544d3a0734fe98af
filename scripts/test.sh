#!/usr/bin/env bash
# Builds and runs the whole test suite: a release build (ctest), the same tests
# under AddressSanitizer + UndefinedBehaviorSanitizer, and each file-parser
# fuzzer for a bounded time. Every stage runs even when an earlier one failed;
# each writes its full log to build/test-logs/<stage>.log and the script ends
# with a summary (and the tail of each failed stage's log), so the last lines of
# a CI run say what broke. Exits non-zero on any failure.
#   FAST=1 scripts/test.sh        # release ctest only
#   FUZZ_SECONDS=60 scripts/test.sh
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh || { echo "test.sh: installing dependencies failed" >&2; exit 1; }
scripts/fetch_model.sh smollm2-135m >/dev/null || echo "test.sh: default model unavailable; its tests will skip" >&2
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

record() {
  local name=$1 rc=$2 secs=$3 log=$4 detail
  detail=$(grep -E "tests passed|tests failed|Done [0-9]+ runs|SUMMARY:|Test unit written" "$log" | tail -n 3 | tr '\n' ' ')
  if [ "$rc" = 0 ]; then
    summary+=("PASS  $name (${secs}s) $detail")
  else
    summary+=("FAIL  $name (${secs}s, exit $rc) $detail")
    failed+=("$name")
  fi
}

ctest_release() {
  scripts/build.sh build/release -DQUAROT_BUILD_BENCH=OFF &&
    ctest --test-dir build/release --output-on-failure -j "$jobs" --timeout 900
}

ctest_sanitized() {
  scripts/build.sh build/asan -DQUAROT_SANITIZE=ON -DQUAROT_NATIVE=OFF -DQUAROT_BUILD_BENCH=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --test-dir build/asan --output-on-failure -j "$jobs" --timeout 1800 -LE slow
}

stage release ctest_release
if [ "${FAST:-0}" != 1 ]; then
  stage asan-ubsan ctest_sanitized
  quiet_stage fuzz scripts/run_fuzz.sh "${FUZZ_SECONDS:-30}"
fi

for name in "${failed[@]}"; do
  echo
  echo "==== last 60 lines of $logs/$name.log ===="
  tail -n 60 "$logs/$name.log"
done
echo
echo "==== test.sh summary ===="
printf '%s\n' "${summary[@]}"
[ "${#failed[@]}" = 0 ]
