#!/usr/bin/env bash
# Best-of-N rotation seeds on the GPU machine (called by full_table.sh seeds):
#  1. how much the seed matters: W4A4KV4 RTN with seeds 0..7, each scored on all WikiText-2
#     test windows (for the record only: a seed must never be chosen on test text);
#  2. the search as users run it: --seed-trials 8 (scored on 4 validation windows) for
#     W4A4KV4 RTN, the GPTQ paper recipe, and the best GPTQ recipe.
# quantize runs on the CPU cores, tools/reference/quarot_runtime.py scores on the GPU.
set -uo pipefail
q=${1:?usage: seed_trials.sh QUAROT OUTDIR}
out=${2:?}
source "$(dirname "$0")/lib.sh"
(for s in 0 1 2 3 4 5 6 7; do row "w4a4kv4_rtn_had_seed$s" 4 --scheme W4A4KV4 --seed $s; done) &
row w4a4kv4_rtn_had_trials8 4 --scheme W4A4KV4 --seed-trials 8 &
row w4a4kv4_gptq_had_trials8 4 --scheme W4A4KV4 --weights gptq --calib-windows 16 --seed-trials 8 &
row w4a4kv4_gptq_had_best_trials8 4 --scheme W4A4KV4 --weights gptq --calib-windows 16 --w-group 64 --w-asym \
  --a-group 64 --a-asym --seed-trials 8 &
wait
echo "seed trials done"
