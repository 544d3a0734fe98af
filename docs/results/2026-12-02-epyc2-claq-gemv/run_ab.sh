#!/usr/bin/env bash
# Whole-model decode, old vs new binary, alternating: ROUNDS rounds, each runs
# `quarot bench --repeats 1` with OLD then NEW on every model of MODELS (OpenMP waiting
# passive for both). Raw JSON per round and binary into OUTDIR; summarize.py makes the
# medians. Usage: OLD=bin NEW=bin MODELS=a,b,c run_ab.sh OUTDIR
set -euo pipefail
out=${1:?usage: OLD=... NEW=... MODELS=... run_ab.sh OUTDIR}
mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE
for r in $(seq 1 "${ROUNDS:-3}"); do
  for tag in old new; do
    bin=$OLD; [[ $tag == new ]] && bin=$NEW
    echo "round $r: $tag" >&2
    uptime > "$out/$tag.$r.load"
    "$bin" -q -t "${THREADS:-2}" bench -m "$MODELS" --prefill "${PREFILL:-512}" --decode "${DECODE:-64}" --repeats 1 --json \
      > "$out/$tag.$r.json"
  done
done
