#!/usr/bin/env bash
# The A/B of this folder: OLD_DIR / NEW_DIR hold `quarot` and `bench_int_gemm` of the two
# builds; three rounds, the two alternating. Run from the repository root.
#   OLD_DIR=/tmp/old NEW_DIR=/tmp/new MODEL=W4A4KV4.quarot.safetensors bash run.sh OUT
set -euo pipefail
# Threads spin between regions (bounded), as tools/bench_side_by_side.sh on an idle machine.
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-300000}
out=${1:?OUT}; mkdir -p "$out"
for r in 1 2 3; do
  for tag in old new; do
    dir=$OLD_DIR; [[ $tag == new ]] && dir=$NEW_DIR
    echo "== round $r $tag" >> "$out/bench_int_gemm.log"
    OMP_NUM_THREADS=2 "$dir/bench_int_gemm" --benchmark_filter='int_gemm_smollm2.*isa:4' --benchmark_min_time=0.5s \
      2>&1 | grep int_gemm_smollm2 >> "$out/bench_int_gemm.log"
  done
done
for r in 1 2 3; do
  for tag in old new; do
    dir=$OLD_DIR; [[ $tag == new ]] && dir=$NEW_DIR
    "$dir/quarot" -q -t 2 bench -m "smollm2-135m,$MODEL" --prefill 512 --decode 16 --repeats 5 > "$out/${tag}_$r.json"
  done
done
