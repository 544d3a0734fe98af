#!/usr/bin/env bash
# A/B of two builds of the CUDA GEMMs in one lease: the checks of the new build, then
# cuda_gemm_bench (rounds of cuBLAS FP16 / cuBLASLt INT8 / ours) old, new, old, new on the
# 70B shapes, then cuda_layer_bench old and new. STAGE_DIR from scripts/cuda_test.sh
# --stage, with the previous build's benchmarks copied beside as cuda_gemm_bench_old and
# cuda_layer_bench_old. VARIANTS (default "old new") names more builds: variant v runs
# cuda_gemm_bench_v / cuda_layer_bench_v, "new" the unsuffixed ones.
#   [VARIANTS="old new"] [TESTS=1] [PACK=0] tools/device/gemm_ab.sh STAGE_DIR OUT_DIR [SHAPES (70B)] [MS (2048,8192)] [LAYER_BATCHES (1,4,16)]
set -u
L=$1 O=$2 shapes=${3:-8192x28672,28672x8192,8192x8192} ms=${4:-2048,8192} batches=${5:-1,4,16}
mkdir -p "$O"
source "$(dirname "${BASH_SOURCE[0]}")/cuda_libs.sh"
use_cuda_libs "$L/lib"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,power.limit,temperature.gpu --format=csv > "$O/gpu.txt" 2>&1
if [[ ${TESTS:-1} == 1 ]]; then
  timeout 240 "$L/test_cuda_kernels" > "$O/test_cuda_kernels.log" 2>&1
  echo "test_cuda_kernels exit $? ($(tail -1 "$O/test_cuda_kernels.log"))"
fi
for r in 1 2; do
  for v in ${VARIANTS:-old new}; do
    b=$L/cuda_gemm_bench
    [[ $v != new ]] && b=${b}_$v
    timeout 150 "$b" "$O/gemm_${v}_$r.json" --no-hadamard --shapes "$shapes" --ms "$ms" --rounds 4 > "$O/gemm_${v}_$r.log" 2>&1
    echo "== gemm $v round $r (exit $?)"
    grep -E "^ *[0-9]+x" "$O/gemm_${v}_$r.log"
  done
done
if [[ -n $batches ]]; then
  for v in ${VARIANTS:-old new}; do
    b=$L/cuda_layer_bench
    [[ $v != new ]] && b=${b}_$v
    timeout 150 "$b" "$O/layer_$v.json" --batches "$batches" --reps 5 > "$O/layer_$v.log" 2>&1
    echo "== layer $v (exit $?)"
    grep -iE "prefill|decode" "$O/layer_$v.log" | head -12
  done
fi
# A device call returns at most 8 files: PACK=1 leaves OUT_DIR as one OUT_DIR.tar.xz.
if [[ ${PACK:-0} == 1 ]]; then
  tar -C "$(dirname "$O")" -cJf "$O.tar.xz" "$(basename "$O")" && rm -rf "$O"
fi
