#!/usr/bin/env bash
# Runs the CUDA kernel checks and benchmarks on the GPU machine, from a folder
# staged by scripts/cuda_test.sh (binaries + the few shared libraries the GPU
# image lacks). Needs only the NVIDIA driver, the CUDA 13 runtime and cuBLAS there.
#   tools/device/cuda_run.sh STAGE_DIR OUT_DIR [test|bench|sanitize|all] [bench args...]
# Writes OUT_DIR/test.log (and test_backend.log), OUT_DIR/bench.log, OUT_DIR/cuda_gemm_bench.json.
set -uo pipefail
stage=$1 out=$2 what=${3:-all}
shift 3 2>/dev/null || shift $#
mkdir -p "$out"
# cuBLAS comes from the machine's CUDA toolkit or PyTorch's wheel, whichever exists.
extra=$(ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib 2>/dev/null | tr '\n' ':')
py=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null || true)
export LD_LIBRARY_PATH="$stage/lib:${extra}${py}:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv 2>&1 | tee "$out/gpu.txt"
rc=0
if [[ $what == test || $what == all ]]; then
  "$stage/test_cuda_kernels" 2>&1 | tee "$out/test.log" | tail -25
  rc=${PIPESTATUS[0]}
  echo "test_cuda_kernels exit $rc"
  if [[ -x $stage/test_cuda_backend ]]; then
    "$stage/test_cuda_backend" 2>&1 | tee "$out/test_backend.log" | tail -25
    brc=${PIPESTATUS[0]}
    echo "test_cuda_backend exit $brc"
    [[ $rc == 0 ]] && rc=$brc
  fi
fi
if [[ $what == bench || $what == all ]]; then
  "$stage/cuda_gemm_bench" "$out/cuda_gemm_bench.json" "$@" 2>&1 | tee "$out/bench.log"
  brc=${PIPESTATUS[0]}
  echo "cuda_gemm_bench exit $brc"
  [[ $rc == 0 ]] && rc=$brc
fi
if [[ $what == sanitize || $what == all ]]; then
  for tool in memcheck racecheck; do
    timeout 300 compute-sanitizer --tool $tool --error-exitcode 3 "$stage/test_cuda_kernels" --quick > "$out/sanitize_$tool.log" 2>&1
    echo "compute-sanitizer $tool exit $?"; tail -3 "$out/sanitize_$tool.log"
  done
fi
exit $rc
