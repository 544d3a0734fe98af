#!/usr/bin/env bash
# The model A/B of this folder: OLD / NEW are two `quarot` binaries; three rounds, the two
# alternating, threads spinning (bounded), as tools/bench_side_by_side.sh on an idle machine.
#   OLD=/tmp/old/quarot NEW=/tmp/new/quarot MODEL=W4A4KV4.quarot.safetensors bash run.sh OUT
set -euo pipefail
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-300000}
out=${1:?OUT}; mkdir -p "$out"
for r in 1 2 3; do
  for tag in old new; do
    bin=$OLD; [[ $tag == new ]] && bin=$NEW
    "$bin" -q -t 2 bench -m "smollm2-135m,$MODEL" --prefill 512 --decode 16 --repeats 5 > "$out/${tag}_$r.json"
  done
done
