#!/usr/bin/env bash
# bench_codebook_gemm old vs new, alternating. OLDB / NEWB: the same bench source
# (bench/bench_codebook_gemm.cpp) linked against main's and this branch's kernels:
#   g++ -std=c++20 -O2 -march=native -fopenmp -Isrc -Ibench bench/bench_codebook_gemm.cpp \
#       <build>/libquarot_kernels.a <build>/libquarot_common.a -lbenchmark -lpthread -lfmt -o OUT
set -euo pipefail
out=${1:?}; mkdir -p "$out"
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-300000}
F='BM_Codebook/(576|192|1536)/(576|1536)/1/(2|3|21)/1/0/real_time|BM_Int4WeightOnly/(576|192|1536)/(576|1536)/1/1/real_time|BM_CodebookHot/(576|1536)/576/(2|3|21)/1'
for r in $(seq 1 "${ROUNDS:-2}"); do
  for tag in old new; do
    bin=$OLDB; [ "$tag" = new ] && bin=$NEWB
    cut -d' ' -f1-3 /proc/loadavg > "$out/$tag.$r.load"
    "$bin" --benchmark_filter="$F" --benchmark_min_time=0.3 --benchmark_out="$out/$tag.$r.json" --benchmark_out_format=json > /dev/null
  done
done
