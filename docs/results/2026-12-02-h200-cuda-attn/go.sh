#!/usr/bin/env bash
# Staged by the cuda-attn helper: KV cache + attention checks, benchmark, compute-sanitizer.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/out}
mkdir -p "$out"
extra=$(ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="$here/lib:${extra}${LD_LIBRARY_PATH:-}"
chmod +x "$here/test_cuda_kv_attention" "$here/cuda_attention_bench"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$out/gpu.txt"
SECONDS=0
"$here/test_cuda_kv_attention" --quick > "$out/test.log" 2>&1; echo "test exit $? (${SECONDS}s)"
grep -E "^FAIL|^PASS|worst|storage checks" "$out/test.log" | head -40
SECONDS=0
"$here/cuda_attention_bench" "$out/cuda_attention_bench.json" > "$out/bench.log" 2>&1; echo "bench exit $? (${SECONDS}s)"
cat "$out/bench.log"
SECONDS=0
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 3 "$here/test_cuda_kv_attention" --quick > "$out/sanitize_memcheck.log" 2>&1
echo "memcheck exit $? (${SECONDS}s)"; tail -4 "$out/sanitize_memcheck.log"
