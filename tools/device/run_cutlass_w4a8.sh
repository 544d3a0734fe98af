#!/usr/bin/env bash
# On the GPU machine: the external W4A8 reference (CUTLASS's Hopper INT4 x FP8 GEMM,
# built by tools/device/build_cutlass_w4a8.sh) beside our W4A4 / W4A8 GEMMs and cuBLAS
# FP16 at issue 9's shapes, in one lease:
#   1. the CUTLASS example for every K x N and M: per-column scales (group = K,
#      mode 1: int4 weights scaled into FP8, FP8 tensor cores, FP32 accumulation, FP16
#      out), weights reordered for the register loads (--shuffle), 50 timed iterations
#      after 10 warm-up; the example checks its result against a reference GEMM.
#   2. our cuda_gemm_bench (OUR_BENCH, default .device/w4a8/cudabench/cuda_gemm_bench):
#      cuBLAS FP16, cuBLASLt INT8, W4A4 and W4A8, R rounds of alternating order;
#   tools/device/run_cutlass_w4a8.sh OUT_DIR [ROUNDS]    (carry .device/w4a8: the CUTLASS binary,
#   cudabench/cuda_gemm_bench and lib/ from a portable QUAROT_CUDA build)
# then tools/device/w4a8_reference_table.py OUT_DIR writes OUT_DIR/w4a8_reference.{json,md}.
set -uo pipefail
out=$1 rounds=${2:-2}
mkdir -p "$out"
cut=${CUTLASS_BIN:-.device/w4a8/55_hopper_int4_fp8_gemm}
ours=${OUR_BENCH:-.device/w4a8/cudabench/cuda_gemm_bench}
source "$(dirname "${BASH_SOURCE[0]}")/cuda_libs.sh"
use_cuda_libs "$(dirname "$ours")/../lib"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
: > "$out/cutlass.log"
for shape in 4096x4096 4096x11008 11008x4096 8192x8192 8192x28672 28672x8192; do
  k=${shape%x*} n=${shape#*x}
  for m in 1 16 64 256 1024 2048 4096 8192; do
    echo "=== k=$k n=$n m=$m" >> "$out/cutlass.log"
    timeout 30 "$cut" --m=$m --n=$n --k=$k --g=$k --mode=1 --shuffle=true --iterations=50 --warmup=10 \
      >> "$out/cutlass.log" 2>&1 || echo "rc=$?" >> "$out/cutlass.log"
  done
done
echo "cutlass: $(grep -c "Avg runtime" "$out/cutlass.log") timed"
timeout ${OURS_TIMEOUT:-360} "$ours" "$out/ours.json" --no-hadamard --rounds "$rounds" > "$out/ours.log" 2>&1
echo "ours: rc=$? $(tail -1 "$out/ours.log")"
