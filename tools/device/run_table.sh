#!/usr/bin/env bash
# Runs bench + the accuracy table with the portable binary (see README.md here).
set -uo pipefail
out=${1:?usage: run_table.sh OUTDIR}
mkdir -p "$out"
q=${QUAROT:-build/dev/quarot}
nproc_all=$(nproc)
{
  echo "start $(date -u +%FT%TZ) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x$nproc_all"
  $q bench -m smollm2-135m > "$out/bench_all_threads.json" 2>&1
  $q -t 2 bench -m smollm2-135m > "$out/bench_2_threads.json" 2>&1
  echo "bench done $(date -u +%T)"
  JOBS=${JOBS:-4} THREADS=${THREADS:-4} QUAROT=$q scripts/accuracy_table.sh "$out"
  echo "end $(date -u +%FT%TZ)"
} > "$out/run.log" 2>&1
