#!/usr/bin/env bash
# Runs the CUDA kernel checks and benchmarks on the GPU machine, from a folder
# staged by scripts/cuda_test.sh (binaries + the few shared libraries the GPU
# image lacks). Needs only the NVIDIA driver, the CUDA 13 runtime and cuBLAS there.
#   tools/device/cuda_run.sh STAGE_DIR OUT_DIR [test|bench|sanitize|layer|all|report] [bench args...]
# `report` fits one device call (under 10 minutes): the checks, the GEMM benchmark,
# the layer benchmark and SASS counts, then compute-sanitizer memcheck / racecheck on
# `test_cuda_kernels --quick` with a bounded time each.
# Writes OUT_DIR/test.log, test_cuda_backend.log and test_cuda_kv_attention.log (the CUDA
# backend's and the KV cache + attention checks), OUT_DIR/bench.log, OUT_DIR/cuda_gemm_bench.json,
# OUT_DIR/cuda_attention_bench.json; `layer`
# (also part of `all`): the attention and layer-kernel checks, compute-sanitizer on both
# (--quick), the SASS tensor-core counts, and cuda_layer_bench
# (OUT_DIR/layer_*.log, OUT_DIR/cuda_layer_bench.json).
set -uo pipefail
stage=$1 out=$2 what=${3:-all}
shift 3 2>/dev/null || shift $#
mkdir -p "$out"
source "$(dirname "${BASH_SOURCE[0]}")/cuda_libs.sh"
use_cuda_libs "$stage/lib"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv 2>&1 | tee "$out/gpu.txt"
rc=0
sanitize_timeout=300
if [[ $what == report ]]; then
  bash "$0" "$stage" "$out" test || rc=$?
  bash "$0" "$stage" "$out" bench "$@" || { brc=$?; [[ $rc == 0 ]] && rc=$brc; }
  for b in test_cuda_kernels cuda_gemm_bench cuda_layer_bench; do
    sass=$(cuobjdump --dump-sass "$stage/$b" 2>/dev/null)
    printf '%s: HMMA %s, IMMA %s, IGMMA %s, LDL/STL %s\n' "$b" "$(grep -c HMMA <<<"$sass")" \
      "$(grep -c IMMA <<<"$sass")" "$(grep -c IGMMA <<<"$sass")" "$(grep -cE '\b(LDL|STL)\b' <<<"$sass")"
  done | tee "$out/sass_counts.txt"
  "$stage/cuda_layer_bench" "$out/cuda_layer_bench.json" > "$out/layer_bench.log" 2>&1
  echo "cuda_layer_bench exit $?"
  what=sanitize
  sanitize_timeout=${SANITIZE_TIMEOUT:-100}
fi
if [[ $what == test || $what == all ]]; then
  "$stage/test_cuda_kernels" 2>&1 | tee "$out/test.log" | tail -25
  rc=${PIPESTATUS[0]}
  echo "test_cuda_kernels exit $rc"
  for t in test_cuda_backend test_cuda_kv_attention; do
    [[ -x $stage/$t ]] || continue
    "$stage/$t" 2>&1 | tee "$out/$t.log" | tail -25
    brc=${PIPESTATUS[0]}
    echo "$t exit $brc"
    [[ $rc == 0 ]] && rc=$brc
  done
fi
if [[ $what == bench || $what == all ]]; then
  "$stage/cuda_gemm_bench" "$out/cuda_gemm_bench.json" "$@" 2>&1 | tee "$out/bench.log"
  brc=${PIPESTATUS[0]}
  echo "cuda_gemm_bench exit $brc"
  [[ $rc == 0 ]] && rc=$brc
  if [[ -x $stage/cuda_attention_bench ]]; then
    "$stage/cuda_attention_bench" "$out/cuda_attention_bench.json" > "$out/attention_bench.log" 2>&1
    echo "cuda_attention_bench exit $?"
  fi
fi
if [[ $what == sanitize || $what == all ]]; then
  for tool in memcheck racecheck; do
    timeout "$sanitize_timeout" compute-sanitizer --tool $tool --error-exitcode 3 "$stage/test_cuda_kernels" --quick > "$out/sanitize_$tool.log" 2>&1
    echo "compute-sanitizer $tool exit $?"; tail -3 "$out/sanitize_$tool.log"
  done
fi
if [[ $what == layer || $what == all ]]; then
  for t in test_cuda_attention test_cuda_layer_ops; do
    "$stage/$t" 2>&1 | tee "$out/layer_$t.log" | tail -4
    trc=${PIPESTATUS[0]}
    echo "$t exit $trc"
    [[ $rc == 0 ]] && rc=$trc
  done
  for t in test_cuda_attention test_cuda_layer_ops; do
    for tool in memcheck racecheck; do
      timeout 90 compute-sanitizer --tool $tool --error-exitcode 3 "$stage/$t" --quick \
        > "$out/layer_sanitize_${t}_$tool.log" 2>&1
      echo "compute-sanitizer $tool on $t: exit $?"; tail -2 "$out/layer_sanitize_${t}_$tool.log"
    done
  done
  # Tensor-core instructions in the binaries: HMMA (FP16 attention), IMMA / IGMMA (int GEMMs).
  for b in test_cuda_attention cuda_layer_bench; do
    sass=$(cuobjdump --dump-sass "$stage/$b" 2>/dev/null)
    printf '%s: HMMA %s, IMMA %s, IGMMA %s, LDL/STL %s\n' "$b" "$(grep -c HMMA <<<"$sass")" \
      "$(grep -c IMMA <<<"$sass")" "$(grep -c IGMMA <<<"$sass")" "$(grep -cE '\b(LDL|STL)\b' <<<"$sass")"
  done | tee "$out/layer_sass_counts.txt"
  "$stage/cuda_layer_bench" "$out/cuda_layer_bench.json" 2>&1 | tee "$out/layer_bench.log"
  lrc=${PIPESTATUS[0]}
  echo "cuda_layer_bench exit $lrc"
  [[ $rc == 0 ]] && rc=$lrc
  nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv 2>&1 | tee -a "$out/gpu.txt"
fi
exit $rc
