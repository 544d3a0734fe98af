#!/usr/bin/env bash
# Whole-model decode, old vs new binary, alternating: per round one
# `quarot -q -t 2 bench -m MODELS --repeats R --json` with each binary (interleaved
# repetitions of the models inside a run). Usage:
#   OLD=bin NEW=bin MODELS=a,b,c ROUNDS=2 REPEATS=3 run_bench_ab.sh OUTDIR
# Writes OUTDIR/{old,new}.<round>.json and OUTDIR/<tag>.<round>.load (load average at the start).
set -euo pipefail
out=${1:?usage: OLD=... NEW=... MODELS=... run_bench_ab.sh OUTDIR}
mkdir -p "$out"
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-300000}
for r in $(seq 1 "${ROUNDS:-2}"); do
  for tag in old new; do
    bin=$OLD; [ "$tag" = new ] && bin=$NEW
    cut -d' ' -f1-3 /proc/loadavg > "$out/$tag.$r.load"
    "$bin" -q -t 2 bench -m "$MODELS" --repeats "${REPEATS:-3}" ${EXTRA:-} --json > "$out/$tag.$r.json"
    echo "round $r $tag done (load $(cat "$out/$tag.$r.load"))" >&2
  done
done
