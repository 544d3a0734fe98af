#!/usr/bin/env bash
# Short-lease plan: our FP perplexity on the whole WikiText-2 test text (8 threads)
# beside the accuracy table on a slice (first CHUNKS windows, 8 threads).
set -uo pipefail
export QUAROT=/tmp/q/quarot
mkdir -p /tmp/full /tmp/slice
( $QUAROT -t 8 ppl -m smollm2-135m --text $QUAROT_DATA/wikitext-2-raw-v1.test.txt --json \
    > /tmp/full/fp.ppl.json 2> /tmp/full/fp.ppl.log ) &
( CHUNKS=${CHUNKS:-10} CALIB_WINDOWS=${CALIB_WINDOWS:-16} HS_LIMIT=${HS_LIMIT:-200} JOBS=1 THREADS=8 \
    scripts/accuracy_table.sh /tmp/slice > /tmp/slice/table.log 2>&1 ) &
wait
