#!/bin/bash
# Interleaved quarot bench runs, old binary then new, 3 rounds.
# Usage: run_e2e.sh OLD_QUAROT NEW_QUAROT MODEL_FILE OUT_DIR
set -u
OLD=$1 NEW=$2 F=$3 OUT=$4
for i in 1 2 3; do
  for v in old new; do
    if [ $v = old ]; then B=$OLD; else B=$NEW; fi
    { date -u +%T; uptime; } > $OUT/${v}_$i.time
    OMP_WAIT_POLICY=PASSIVE $B -q -t 2 bench -m $F --repeats 2 --json > $OUT/${v}_$i.json 2> $OUT/${v}_$i.err
  done
done
