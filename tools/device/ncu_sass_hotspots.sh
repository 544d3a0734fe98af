#!/usr/bin/env bash
# Where the warps of a kernel stall, instruction by instruction: Nsight Compute's source
# counters (warp-state sampling) on one launch, exported as SASS-level CSV.
#   tools/device/ncu_sass_hotspots.sh STAGE_DIR OUT_DIR
# Profiles WgmmaRs on 8192 x 28672 at M = 2048 (the shape whose tile changes cost most),
# the Hadamard+quantize kernel on 8192 x 4096 rows and the fused SwiGLU + mix + quantize
# pass on 8192 x 28672, and the p = 1 quantizer (the RMSNorm's) on 8192 x 8192 (WHICH, default
# all four, picks). Writes OUT_DIR/<name>.txt (the summary sections) and
# OUT_DIR/<name>_sass.csv.xz (per-instruction samples).
#   [WHICH="wgmma_rs hadamard_quant swiglu_hq hq_p1"] tools/device/ncu_sass_hotspots.sh STAGE_DIR OUT_DIR
set -u
stage=$1 out=$2
mkdir -p "$out"
source "$(dirname "${BASH_SOURCE[0]}")/cuda_libs.sh"
use_cuda_libs "$stage/lib"
b=$stage/cuda_gemm_bench
sec="--section SpeedOfLight --section WarpStateStats --section SchedulerStats --section SourceCounters --section InstructionStats"
profile() {  # NAME KERNEL_REGEX SKIP [bench args]; KERNEL_REGEX on the function name, or on the
  local name=$1 kernel=$2 skip=$3 base=function  # mangled one when it starts with "mangled:"
  shift 3
  if [[ $kernel == mangled:* ]]; then
    base=mangled kernel=${kernel#mangled:}
  fi
  timeout 200 ncu $sec --kernel-name-base $base -k "regex:$kernel" --launch-skip "$skip" --launch-count 1 \
    -f -o "$out/$name" "$b" /tmp/ncu_x.json "$@" > "$out/${name}_run.log" 2>&1
  echo "$name: ncu exit $?"
  ncu --import "$out/$name.ncu-rep" --print-summary none > "$out/$name.txt" 2>&1
  ncu --import "$out/$name.ncu-rep" --page source --print-source sass --csv > "$out/${name}_sass.csv" 2>&1
  echo "$name: $(wc -l < "$out/${name}_sass.csv") SASS rows"
  xz -9 "$out/${name}_sass.csv"
  rm -f "$out/$name.ncu-rep"
}
which=${WHICH:-wgmma_rs hadamard_quant swiglu_hq hq_p1}
[[ $which == *wgmma_rs* ]] && profile wgmma_rs '^wgmma_rs_kernel' 1 --no-hadamard --shapes 8192x28672 --ms 2048 --rounds 1
[[ $which == *hadamard_quant* ]] && profile hadamard_quant 'regs_kernel' 2 --no-gemm --hq-ms 8192 --hq-variant coalesced
[[ $which == *swiglu_hq* ]] && profile swiglu_hq 'swiglu_hq_kernel' 2 --no-gemm --hq-ms 8192 --hq-variant coalesced
[[ $which == *hq_p1* ]] && profile hq_p1 'mangled:regs_kernelI6__halfLi4ELi0ELi3E' 2 --no-gemm --hq-ms 8192 --hq-variant coalesced
true
