#!/usr/bin/env bash
# The tensor-core Hadamard + quantize on the GPU machine in one call: the kernel checks
# (every variant; TensorCore's codes and scales against the CPU reference within its
# documented bounds), the layer-op and attention checks (shared helpers moved), the
# Hadamard + quantize benchmark with every variant against a copy, and compute-sanitizer
# memcheck / racecheck on the quick kernel checks.
#   tools/device/hq_tc_check.sh STAGE_DIR OUT_DIR [HQ_MS (1,16,2048,8192)]
# STAGE_DIR from scripts/cuda_test.sh --stage; writes OUT_DIR/*.log and hq.json.
set -u
S=$1 O=$2 ms=${3:-1,16,2048,8192}
mkdir -p "$O"
source "$(dirname "${BASH_SOURCE[0]}")/cuda_libs.sh"
use_cuda_libs "$S/lib"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv 2>&1 | tee "$O/gpu.txt"
rc=0
timeout 300 "$S/test_cuda_kernels" > "$O/test_cuda_kernels.log" 2>&1
trc=$?; [[ $trc == 0 ]] || rc=$trc
echo "test_cuda_kernels exit $trc"; tail -3 "$O/test_cuda_kernels.log"
grep -E "tensor_core.*codes differ|FAIL" "$O/test_cuda_kernels.log" | head -40
for t in test_cuda_layer_ops test_cuda_attention; do
  [[ -x $S/$t ]] || continue
  timeout 120 "$S/$t" > "$O/$t.log" 2>&1
  trc=$?; [[ $trc == 0 ]] || rc=$trc
  echo "$t exit $trc"; tail -2 "$O/$t.log"
done
timeout 150 "$S/cuda_gemm_bench" "$O/hq.json" --no-gemm --hq-variants --hq-ms "$ms" > "$O/hq.log" 2>&1
echo "cuda_gemm_bench (hq) exit $?"
grep -E "^(auto|tc|tensor|coalesced|staged|direct|legacy)|M  " "$O/hq.log" | head -80
for tool in memcheck racecheck; do
  timeout "${SANITIZE_TIMEOUT:-100}" compute-sanitizer --tool $tool --error-exitcode 3 "$S/test_cuda_kernels" --quick \
    > "$O/sanitize_$tool.log" 2>&1
  echo "compute-sanitizer $tool exit $?"; tail -2 "$O/sanitize_$tool.log"
done
exit $rc
