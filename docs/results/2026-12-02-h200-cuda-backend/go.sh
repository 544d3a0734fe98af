#!/usr/bin/env bash
# CUDA backend checks + benchmark + compute-sanitizer (staged by the cuda-backend helper).
set -u
D=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
extra=$(ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib 2>/dev/null | tr '\n' ':')
py=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null || true)
export LD_LIBRARY_PATH="$D/lib:${extra}${py}:${LD_LIBRARY_PATH:-}"
export OMP_WAIT_POLICY=PASSIVE
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$OUT/gpu.txt"
ldd "$D/test_cuda_backend" | grep -i "not found" | tee "$OUT/ldd_missing.txt"
SECONDS=0
timeout 100 "$D/test_cuda_kernels" > "$OUT/test_kernels.log" 2>&1; echo "test_cuda_kernels rc=$? (${SECONDS}s)"; tail -4 "$OUT/test_kernels.log"
SECONDS=0
timeout 150 "$D/test_cuda_backend" > "$OUT/test_backend.log" 2>&1; echo "test_cuda_backend rc=$? (${SECONDS}s)"
grep -E "FAILED|PASSED|^  (fp16|W|tiny)" "$OUT/test_backend.log" | head -60
SECONDS=0
timeout 120 "$D/cuda_backend_bench" "$OUT/bench.json" --prefill 512 --decode 64 --check 64 > "$OUT/bench.log" 2>&1; echo "bench rc=$? (${SECONDS}s)"; tail -12 "$OUT/bench.log"
SECONDS=0
timeout 150 compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 3 "$D/test_cuda_backend" > "$OUT/memcheck.log" 2>&1; echo "memcheck rc=$? (${SECONDS}s)"; tail -3 "$OUT/memcheck.log"
SECONDS=0
timeout 90 compute-sanitizer --tool racecheck --error-exitcode 3 "$D/test_cuda_backend" --gtest_filter='CudaBackend.RotateBitIdentical:CudaBackend.LinearFallbackEncodings:CudaBackend.RmsNorm*' > "$OUT/racecheck.log" 2>&1; echo "racecheck rc=$? (${SECONDS}s)"; tail -3 "$OUT/racecheck.log"
