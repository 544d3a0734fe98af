#!/usr/bin/env bash
# ncu profile of the register Hadamard+quantize kernel (direct variant), K = 4096 and 28672.
set -u
b=.device/c/cuda_gemm_bench
sec="--section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section Occupancy --section LaunchStats --section InstructionStats --section MemoryWorkloadAnalysis"
for spec in "8192 direct" "2048 direct" "8192 staged"; do
  set -- $spec
  echo "=== M=$1 variant $2"
  timeout 120 ncu $sec -k regex:regs_kernel --launch-skip 2 --launch-count 1 $b /tmp/x.json --no-gemm --hq-ms $1 --hq-variant $2 2>&1 | grep -v "^==PROF==" | head -220
done
