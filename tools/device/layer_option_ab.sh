#!/usr/bin/env bash
# A/B of two option sets of cuda_layer_bench in one lease, alternating (a b a b ...), so
# both see the same GPU state: e.g. the fused RMSNorm / SwiGLU quantizers against their
# two-pass forms. An option set starting with @NAME runs the binary cuda_layer_bench_NAME
# (another build staged beside) with the rest. STAGE_DIR from scripts/cuda_test.sh --stage.
#   tools/device/layer_option_ab.sh STAGE_DIR OUT_DIR "OPTS_A" "OPTS_B" [ROUNDS (2)] [BATCHES (4,16)]
# Writes OUT_DIR/layer_{a,b}_R.{json,log} and prints each run's prefill / decode lines.
set -u
L=$1 O=$2 A=$3 B=$4 rounds=${5:-2} batches=${6:-4,16}
mkdir -p "$O"
source "$(dirname "${BASH_SOURCE[0]}")/cuda_libs.sh"
use_cuda_libs "$L/lib"
echo "a: $A" > "$O/options.txt"
echo "b: $B" >> "$O/options.txt"
for r in $(seq 1 "$rounds"); do
  for v in a b; do
    opts=$A
    [[ $v == b ]] && opts=$B
    bin=$L/cuda_layer_bench
    if [[ $opts == @* ]]; then
      name=${opts%% *}
      bin=${bin}_${name#@}
      opts=${opts#"$name"}
    fi
    # shellcheck disable=SC2086  # the option sets are word lists
    timeout 200 "$bin" "$O/layer_${v}_$r.json" --batches "$batches" --reps 5 $opts \
      > "$O/layer_${v}_$r.log" 2>&1
    echo "== layer $v round $r ($opts) exit $?"
    grep -E "^prefill|^decode" "$O/layer_${v}_$r.log"
  done
done
