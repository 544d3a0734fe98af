#!/bin/bash
cd /work/main
for f in build/bench-models/claq3_had /tmp/dense/claq3_had_a8 build/bench-models/claq2.12_had /tmp/dense/claq2.12_had_a8; do
  b=$(basename $f)
  echo "$(date -u +%T) start $b" >> /tmp/a8/log
  /tmp/a8/quarot_bin -q -t 2 ppl -m $f.quarot.safetensors --max-chunks 0 --json > /tmp/a8/$b.ppl.json 2> /tmp/a8/$b.err
  echo "$(date -u +%T) done $b rc=$? $(grep -m1 '"ppl"' /tmp/a8/$b.ppl.json)" >> /tmp/a8/log
done
