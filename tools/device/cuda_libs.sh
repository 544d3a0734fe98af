# Sourced by the tools/device CUDA scripts: `use_cuda_libs DIR` puts DIR (the staged shared
# libraries the GPU image lacks), the machine's CUDA toolkit libraries and PyTorch's cuBLAS
# wheel, whichever exist, in front of LD_LIBRARY_PATH.
use_cuda_libs() {
  local extra py
  extra=$(ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib 2>/dev/null | tr '\n' ':')
  py=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null || true)
  export LD_LIBRARY_PATH="$1:${extra}${py}:${LD_LIBRARY_PATH:-}"
}
