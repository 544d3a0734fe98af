#!/usr/bin/env bash
# Call 1 (no model): the CUDA backend checks with recorded steps, the KV/attention
# checks, memcheck on the recorded-step test, and cuda_backend_bench (SmolLM2-135M
# shape, random weights) for the base commit and this branch.
# Staged folder: new/{test_cuda_backend,test_cuda_kv_attention,cuda_backend_bench},
# base/cuda_backend_bench (when staged), lib/ (libfmt, libgomp, libstdc++, libgcc_s), this script.
set -u
D=$(cd "$(dirname "$0")" && pwd)
# Everything goes to R, packed into one file at the end (a call returns at most 8 files).
FINAL=${OUT:-/tmp/out}
R=/tmp/cg_call1
rm -rf "$R" && mkdir -p "$R" "$FINAL"
OUT=$R
trap 'tar czf "$FINAL/call1.tgz" -C "$R" . ; cp "$R"/backend_bench_*.json "$FINAL/" 2>/dev/null' EXIT
extra=$(ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib 2>/dev/null | tr '\n' ':')
py=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null || true)
export LD_LIBRARY_PATH="$D/lib:${extra}${py}:${LD_LIBRARY_PATH:-}"
export OMP_WAIT_POLICY=PASSIVE
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$OUT/gpu.txt"
SECONDS=0
timeout 120 "$D/new/test_cuda_backend" > "$OUT/test_cuda_backend.log" 2>&1
echo "test_cuda_backend rc=$? (${SECONDS}s)"
grep -E "FAILED|PASSED|OK \]|steps direct|tiny" "$OUT/test_cuda_backend.log" | head -40
SECONDS=0
timeout 100 "$D/new/test_cuda_kv_attention" > "$OUT/test_cuda_kv_attention.log" 2>&1
echo "test_cuda_kv_attention rc=$? (${SECONDS}s)"; tail -3 "$OUT/test_cuda_kv_attention.log"
for v in new base; do
  [ -x "$D/$v/cuda_backend_bench" ] || continue
  SECONDS=0
  timeout 100 "$D/$v/cuda_backend_bench" "$OUT/backend_bench_$v.json" --prefill 512 --decode 128 --check 0 \
    > "$OUT/backend_bench_$v.log" 2>&1
  echo "cuda_backend_bench $v rc=$? (${SECONDS}s)"
  grep -E "decode_ms|prefill_tokens_per_s|replays|failure" "$OUT/backend_bench_$v.log"
done
SECONDS=0
timeout 100 compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 3 "$D/new/test_cuda_backend" \
  --gtest_filter='CudaBackend.RecordedSteps*:CudaBackend.TinyModelForward' > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$? (${SECONDS}s)"; tail -3 "$OUT/memcheck.log"
