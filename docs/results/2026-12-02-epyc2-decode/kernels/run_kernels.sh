#!/bin/bash
# Interleaved kernel benchmarks, base build then new build, 3 rounds.
# Usage: run_kernels.sh BASE_BENCH_DIR NEW_BENCH_DIR OUT_DIR  (each dir holds bench_int_gemm, bench_weight_only_gemm)
set -u
BASE=$1 NEW=$2 OUT=$3
F='int_gemm/N:(576|1536|4096|11008)/K:[0-9]+/M:(1|8)/wbits:4/abits:4/isa:1/'
for i in 1 2 3; do
  for v in base new; do
    if [ $v = base ]; then D=$BASE; else D=$NEW; fi
    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 $D/bench_int_gemm --benchmark_filter="$F" --benchmark_min_time=0.2 \
      --benchmark_out=$OUT/int_${v}_$i.json --benchmark_out_format=json > /dev/null
    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 $D/bench_weight_only_gemm --benchmark_filter='BM_WeightOnly/1/0/1/' \
      --benchmark_min_time=0.5 --benchmark_out=$OUT/wo_${v}_$i.json --benchmark_out_format=json > /dev/null
  done
done
