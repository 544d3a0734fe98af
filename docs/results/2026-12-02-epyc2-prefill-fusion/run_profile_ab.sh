#!/bin/bash
# A/B of quarot bench --profile with the FP32 and the W4A4KV4 model, old and new alternated.
# run_profile_ab.sh OLD_QUAROT NEW_QUAROT W4A4KV4_FILE OUT_DIR
OLD=$1 NEW=$2 MODEL=$3 OUT=$4
for round in 1 2; do
  for arm in old new; do
    Q=$OLD; [ $arm = new ] && Q=$NEW
    $Q -q -t 2 bench -m smollm2-135m,"$MODEL" --decode 1 --repeats 3 --profile --json > "$OUT/profile_${arm}_${round}.json"
  done
done
