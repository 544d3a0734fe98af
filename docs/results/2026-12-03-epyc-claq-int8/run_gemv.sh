#!/usr/bin/env bash
# The GEMV comparison in interleaved rounds (the 2-vCPU machine is shared; a round that
# overlaps someone else's burst reads ~8 ms, so medians over rounds, and the load is logged).
# Usage: run_gemv.sh BUILD_DIR OUT_DIR [ROUNDS] [THREADS]
set -euo pipefail
B=$1; O=$2; R=${3:-7}; T=${4:-2}
mkdir -p "$O"
F='BM_CodebookBig/|BM_CodebookInt8/(4096|11008)/(4096|11008)/1/[234]/16/|BM_Int4A8Big/'
for r in $(seq 1 "$R"); do
  echo "round $r load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$O/load.log"
  OMP_NUM_THREADS=$T GOMP_SPINCOUNT=300000 "$B/bench/bench_codebook_gemm" --benchmark_filter="$F" \
    --benchmark_min_time=0.1 --benchmark_out="$O/gemv_t${T}_r$r.json" --benchmark_out_format=json > /dev/null 2>&1
done
python3 - "$O" "$T" <<'PY'
import glob, json, statistics, sys, collections
o, t = sys.argv[1], sys.argv[2]
runs = collections.defaultdict(list)
for f in sorted(glob.glob(f"{o}/gemv_t{t}_r*.json")):
    for b in json.load(open(f))["benchmarks"]:
        runs[b["name"]].append(b["real_time"])
for name, v in runs.items():
    print(f"{name:55s} median {statistics.median(v):8.0f} us  min {min(v):8.0f}  rounds {len(v)}")
PY
