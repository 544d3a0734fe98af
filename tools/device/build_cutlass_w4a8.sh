#!/usr/bin/env bash
# Builds the external W4A8 reference point of issue 9 (faster than a W4A8 reference at
# every M): CUTLASS's Hopper INT4 x FP8 mixed-input GEMM example
# (examples/55_hopper_mixed_dtype_gemm/55_hopper_int4_fp8_gemm.cu, the kernel family
# vLLM's W4A8 path on Hopper is built from), compiled from the PyPI package
# nvidia-cutlass (headers and examples) for sm_90a on this machine. Nothing of it enters
# git: the sources are unpacked under ~/.cache/quarot, the binary goes to OUT.
#
#   tools/device/build_cutlass_w4a8.sh [OUT]      (default .device/w4a8/55_hopper_int4_fp8_gemm)
# Run it on the GPU machine with tools/device/run_cutlass_w4a8.sh (carry .device/w4a8).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-.device/w4a8/55_hopper_int4_fp8_gemm}
version=${CUTLASS_VERSION:-4.2.0.0}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/quarot/cutlass-$version
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[[ -x "$nvcc" ]] || { echo "nvcc not found (set NVCC=)" >&2; exit 1; }
if [[ ! -d "$cache/cutlass_library/source/include" ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --no-deps -q -d "$tmp" "nvidia-cutlass==$version"
  mkdir -p "$cache"
  python3 -c "import sys, zipfile, glob; zipfile.ZipFile(glob.glob(sys.argv[1] + '/*.whl')[0]).extractall(sys.argv[2])" "$tmp" "$cache"
fi
src=$cache/cutlass_library/source
mkdir -p "$(dirname "$out")"
echo "compiling $src/examples/55_hopper_mixed_dtype_gemm/55_hopper_int4_fp8_gemm.cu (several minutes)" >&2
"$nvcc" -std=c++17 -O3 -DNDEBUG --expt-relaxed-constexpr -gencode=arch=compute_90a,code=sm_90a \
  -I "$src/include" -I "$src/tools/util/include" -I "$src/examples/common" \
  -I "$src/examples/55_hopper_mixed_dtype_gemm" \
  "$src/examples/55_hopper_mixed_dtype_gemm/55_hopper_int4_fp8_gemm.cu" -o "$out"
echo "built $out (CUTLASS $version)" >&2
