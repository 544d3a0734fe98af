#!/usr/bin/env bash
# session 30: the CUDA backend after Backend::rmsnorm_swiglu (default: declines) and the layer / GEMM
# at 70B shapes on whatever card this lease has.
set -u
LIMIT=${LIMIT:-560}
left() { echo $((LIMIT - SECONDS)); }
step() { local t=$1; shift; local l=$(left); (( l < 20 )) && { echo "skip (no time): $*"; return 124; }; (( t > l )) && t=$l; timeout $t "$@"; }
xz -dc .device/z/c30.tar.xz | tar -xf - -C /tmp
S=/tmp/c O=$OUT/r30; mkdir -p $O
trap 'tar -C $OUT -czf $OUT/r30.tgz r30' EXIT
source $S/cuda_libs.sh; use_cuda_libs $S/lib
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv | tee $O/gpu.txt
step 120 $S/test_cuda_backend > $O/test_cuda_backend.log 2>&1; echo "test_cuda_backend exit $? $(tail -1 $O/test_cuda_backend.log)"
step 60 $S/test_cuda_layer_ops > $O/test_cuda_layer_ops.log 2>&1; echo "test_cuda_layer_ops exit $? $(tail -1 $O/test_cuda_layer_ops.log)"
for r in 1 2; do
  step 110 $S/cuda_layer_bench $O/layer_$r.json --batches 1,4,16 --reps 5 > $O/layer_$r.log 2>&1; echo "layer $r exit $?"; grep -E "^prefill|^decode" $O/layer_$r.log
done
step 80 $S/cuda_gemm_bench $O/gemm.json --shapes 8192x28672,28672x8192,8192x8192 --ms 2048,8192 --no-hadamard --rounds 2 > $O/gemm.log 2>&1; echo "gemm exit $?"; tail -10 $O/gemm.log
