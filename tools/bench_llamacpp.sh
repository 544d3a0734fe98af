#!/usr/bin/env bash
# llama.cpp baseline beside `quarot bench` (issue 8): JSON on stdout, progress on stderr.
#   tools/bench_llamacpp.sh [--setup-only] [--source GGUF] [--types F32,F16,Q8_0,Q4_0] [bench options...]
# bench options go to tools/bench_llamacpp.py bench (--threads 2 --prompt 512 --decode 128
# --repeats 3 by default). First run: makes a venv in build/llamacpp-venv and installs
# llama-cpp-python from PyPI, which compiles llama.cpp from source for this CPU
# (GGML_NATIVE; takes long on 2 cores), then writes the GGUFs to build/llamacpp-models.
# Environment: LLAMACPP_VENV, LLAMACPP_MODELS override those folders; JOBS the build jobs;
# LLAMACPP_AMX=0 builds llama.cpp for this CPU's AVX-512 / VNNI without its AMX kernels (in
# build/llamacpp-venv-noamx): on some virtualized Xeons with AMX its AMX matrix product
# segfaults in the first prompt (ggml-org/llama.cpp#20824, open), and this is the fallback
# its users take. The JSON's system_info says which kernels the run had.
set -euo pipefail
cd "$(dirname "$0")/.."
amx=${LLAMACPP_AMX:-1}
default_venv=build/llamacpp-venv
[[ $amx == 0 ]] && default_venv=build/llamacpp-venv-noamx
venv=${LLAMACPP_VENV:-$default_venv}
models=${LLAMACPP_MODELS:-build/llamacpp-models}
version=0.3.36  # pinned: tools/bench_llamacpp.py knows the llama.cpp commit it vendors
source_gguf="${HOME}/.cache/quarot/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"
types=F32,F16,Q8_0,Q4_0
bench_args=()
setup_only=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --source) source_gguf=$2; shift 2 ;;
    --types) types=$2; shift 2 ;;
    --setup-only) setup_only=1; shift ;;
    *) bench_args+=("$1"); shift ;;
  esac
done
[[ -f "$source_gguf" ]] || { echo "source GGUF $source_gguf missing (scripts/fetch_model.sh fetches it)" >&2; exit 1; }

if ! "$venv/bin/python" -c "import llama_cpp, gguf, numpy; assert llama_cpp.__version__ == '$version'" 2>/dev/null; then
  echo "installing llama-cpp-python $version into $venv (compiles llama.cpp)..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >&2
  isa="-DGGML_NATIVE=ON"
  if [[ $amx == 0 ]]; then
    # This CPU's extensions spelled out, AMX left off (GGML_NATIVE would turn it on).
    flags=$(grep -m1 '^flags' /proc/cpuinfo)
    has() { [[ " $flags " == *" $1 "* ]] && echo ON || echo OFF; }
    isa="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=$(has bmi2)
-DGGML_AVX_VNNI=$(has avx_vnni) -DGGML_AVX512=$(has avx512f) -DGGML_AVX512_VBMI=$(has avx512vbmi)
-DGGML_AVX512_VNNI=$(has avx512_vnni) -DGGML_AVX512_BF16=$(has avx512_bf16) -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF
-DGGML_AMX_BF16=OFF"
  fi
  CMAKE_ARGS="$(echo $isa) -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_BLAS=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF \
-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF" \
  CMAKE_BUILD_PARALLEL_LEVEL=${JOBS:-2} \
    "$venv/bin/pip" install --no-cache-dir "llama-cpp-python==$version" numpy gguf >&2
fi

# llama.cpp's OpenMP threads wait the way quarot's do (src/common/wait_policy.h): bounded
# spinning when the machine is idle (1-minute load average below 0.5), passive waiting
# otherwise; tools/bench_side_by_side.sh decides once for both engines. A caller's own
# OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
if [[ -z "${OMP_WAIT_POLICY:-}" && -z "${GOMP_SPINCOUNT:-}" ]]; then
  if awk '{exit !($1 < 0.5)}' /proc/loadavg && [[ $(nproc) -gt 1 ]]; then
    export GOMP_SPINCOUNT=300000
  else
    export OMP_WAIT_POLICY=PASSIVE
  fi
fi
listing=$("$venv/bin/python" tools/bench_llamacpp.py prepare "$source_gguf" "$models" --types "$types")
mapfile -t files <<< "$listing"
[[ $setup_only == 1 ]] && exit 0
exec "$venv/bin/python" tools/bench_llamacpp.py bench "${files[@]}" "${bench_args[@]}"
