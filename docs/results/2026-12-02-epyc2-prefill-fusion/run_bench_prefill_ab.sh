#!/bin/bash
# A/B of bench_prefill, old and new alternated, 8 rounds x 5 prefills of 512 tokens, 2 threads.
# run_bench_prefill_ab.sh OLD_BENCH_PREFILL NEW_BENCH_PREFILL MODEL > bench_prefill_t2_ab.txt
OLD=$1 NEW=$2 MODEL=$3
for round in 1 2 3 4 5 6 7 8; do
  for arm in old new; do
    B=$OLD; [ $arm = new ] && B=$NEW
    echo "$round $arm $($B "$MODEL" 512 5 2 2>/dev/null | tail -1)"
  done
done
