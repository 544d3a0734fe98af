#!/usr/bin/env bash
# A/B of two builds of the tensor-core Hadamard + quantize in one lease: the new build's
# kernel checks, then the Hadamard + quantize benchmark of TensorCore from the previous
# build (cuda_gemm_bench_OLD beside) and the new one, alternating for ROUNDS rounds, then
# one Nsight Compute profile of the new kernel (8192 x 4096, p = 4096).
#   tools/device/hq_tc_ab.sh STAGE_DIR OUT_DIR [OLD (tc1)] [ROUNDS (2)] [HQ_MS (2048,8192)]
set -u
S=$1 O=$2 old=${3:-tc1} rounds=${4:-2} ms=${5:-2048,8192}
mkdir -p "$O"
source "$(dirname "${BASH_SOURCE[0]}")/cuda_libs.sh"
use_cuda_libs "$S/lib"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > "$O/gpu.txt" 2>&1
cat "$O/gpu.txt"
timeout 240 "$S/test_cuda_kernels" > "$O/test_cuda_kernels.log" 2>&1
echo "test_cuda_kernels exit $? ($(tail -1 "$O/test_cuda_kernels.log"))"
for r in $(seq 1 "$rounds"); do
  for v in "$old" new; do
    b=$S/cuda_gemm_bench
    [[ $v != new ]] && b=${b}_$v
    timeout 90 "$b" "$O/hq_${v}_$r.json" --no-gemm --hq-variant tensor_core --hq-ms "$ms" > "$O/hq_${v}_$r.log" 2>&1
    echo "== $v round $r (exit $?)"
    grep -E "^tensor_core" "$O/hq_${v}_$r.log"
  done
done
if command -v ncu > /dev/null; then
  timeout 120 ncu --kernel-name regex:hadamard_quant_tc_kernel --launch-count 1 --section SpeedOfLight --section Occupancy \
    --section WarpStateStats --section InstructionStats "$S/cuda_gemm_bench" "$O/ncu_x.json" --no-gemm \
    --hq-variant tensor_core --hq-ms 8192 > "$O/ncu_tc_8192x4096.txt" 2>&1
  echo "ncu exit $?"
  grep -E "Duration|Issue Slots Busy|Registers Per|Theoretical Active|Achieved Active|Warp Cycles Per Issued|Executed Instructions  " "$O/ncu_tc_8192x4096.txt"
fi
