#!/usr/bin/env bash
# Why the large GEMMs' ratio to cuBLAS FP16 moves between runs and passes: the card's
# clocks and power while cuda_gemm_bench runs (nvidia-smi asked every 20 ms; it delivered
# about every 60 ms on the H200), and Nsight Compute's view (clocks held) of our WgmmaRs
# kernel, cuBLASLt INT8 and cuBLAS FP16 on one 70B shape (and ours on 28672 x 8192).
# Staged binaries from scripts/cuda_test.sh --stage DIR.
#   tools/device/gemm_power_probe.sh STAGE_DIR OUT_DIR [SHAPE (8192x28672)] [M (2048)]
# Environment: ROUNDS=0 skips the rounds benchmark, NCU=0 the profiles; SHAPES, MS and
# EXTRA (more cuda_gemm_bench flags) change the rounds benchmark.
set -u
stage=$1 out=$2 shape=${3:-8192x28672} m=${4:-2048}
mkdir -p "$out"
source "$(dirname "${BASH_SOURCE[0]}")/cuda_libs.sh"
use_cuda_libs "$stage/lib"
b=$stage/cuda_gemm_bench
nvidia-smi -q -d POWER,CLOCK,PERFORMANCE > "$out/nvidia_smi_q.txt" 2>&1
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active \
  --format=csv,nounits -lms 20 > "$out/smi.csv" 2>&1 &
smi=$!
sleep 1
[[ ${ROUNDS:-1} == 1 ]] || { kill $smi; smi=; }
[[ -z $smi ]] || {
date +%s.%N > "$out/bench_start"
timeout ${ROUNDS_TIMEOUT:-300} "$b" "$out/rounds.json" --no-hadamard --shapes "${SHAPES:-$shape,28672x8192,8192x8192}" \
  --ms "${MS:-2048,8192}" --rounds 4 ${EXTRA:-} > "$out/rounds.log" 2>&1
date +%s.%N > "$out/bench_end"
sleep 1
kill $smi
}
if [[ ${NCU:-1} == 1 ]] && command -v ncu > /dev/null; then
  sec="--section SpeedOfLight --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy --section ComputeWorkloadAnalysis --section WarpStateStats"
  # Round 0 runs cuBLAS FP16, cuBLASLt INT8, W4A4, W4A8 (after each one's warm-up launch).
  prof() {  # SHAPE NAME-BASE REGEX [BENCH ARGS]
    echo "=== $1 $3" >> "$out/ncu.txt"
    timeout 100 ncu $sec --kernel-name-base "$2" -k "regex:$3" --launch-skip 1 --launch-count 1 "$b" /tmp/ncu.json \
      --no-hadamard --shapes "$1" --ms "$m" --rounds 1 "${@:4}" 2>&1 | grep -v "^==PROF==" >> "$out/ncu.txt"
  }
  prof "$shape" mangled 'wgmma_rs_kernel.*Lb0ELb0E'
  prof "$shape" function 'i8|s8|Int8|int8|imma|igemm'
  prof "$shape" function 'nvjet|xmma|cutlass|sm90'
  prof 28672x8192 mangled 'wgmma_rs_kernel.*Lb0ELb0E'

fi
[[ -f $out/rounds.log ]] && tail -20 "$out/rounds.log"
