#!/usr/bin/env bash
# Builds the CUDA kernel checks and benchmark for sm_90a and runs them, or stages
# them for the GPU machine (build where quarot's dependencies are, run where the GPU is).
#   scripts/cuda_test.sh [--build DIR] --run OUT_DIR [test|bench|sanitize|layer|all] [bench args...]
#       build, then run here (this machine has the GPU)
#   scripts/cuda_test.sh [--build DIR] --stage STAGE_DIR
#       build, then copy the binaries and the shared libraries the GPU image lacks
#       into STAGE_DIR; on the GPU machine run
#       tools/device/cuda_run.sh STAGE_DIR OUT_DIR [test|bench|sanitize|layer|all] [bench args...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/cuda
if [[ ${1:-} == --build ]]; then build=$2; shift 2; fi
mode=${1:?usage: cuda_test.sh [--build DIR] --run OUT_DIR [what] | --stage STAGE_DIR}
dest=${2:?missing directory}
shift 2
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
# Portable host code: the GPU machine's processor may lack this one's extensions.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQUAROT_CUDA=ON -DQUAROT_NATIVE=OFF \
  -DQUAROT_BUILD_BENCH=OFF -DCMAKE_CUDA_COMPILER="$nvcc" >/dev/null
bins=(tests/kernels/cuda/test_cuda_kernels tests/kernels/cuda/test_cuda_attention tests/kernels/cuda/test_cuda_layer_ops
  tests/kernels/cuda/test_cuda_backend tests/kernels/cuda/test_cuda_kv_attention bench/cuda/cuda_gemm_bench
  bench/cuda/cuda_layer_bench bench/cuda/cuda_backend_bench bench/cuda/cuda_attention_bench)
cmake --build "$build" --target "${bins[@]##*/}" -j "$(nproc)"
case $mode in
  --run)
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage/lib"
    for b in "${bins[@]}"; do cp "$build/$b" "$stage/"; done
    tools/device/cuda_run.sh "$stage" "$dest" "$@"
    ;;
  --stage)
    mkdir -p "$dest/lib"
    for b in "${bins[@]}"; do cp "$build/$b" "$dest/"; done
    cp tools/device/cuda_run.sh tools/device/cuda_libs.sh "$dest/"
    # Libraries the test links that a bare CUDA image may not have (fmt, OpenMP's runtime).
    for lib in $(ldd "$build/tests/kernels/cuda/test_cuda_kernels" "$build/tests/kernels/cuda/test_cuda_backend" |
      awk '/libfmt|libgomp/ {print $3}' | sort -u); do
      cp -L "$lib" "$dest/lib/"
    done
    echo "staged into $dest"
    ;;
  *)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac
