#!/usr/bin/env bash
# Second phase when the device lease is short: once the first full-length rows are
# done, HellaSwag on them, and the remaining rows on a 40-window slice.
set -uo pipefail
res=/tmp/res
pkill -f run_table.sh; pkill -f accuracy_table.sh   # stop the pool; running quarot jobs go on
export QUAROT=/tmp/q/quarot
# wait for the three short full-length ppl rows
while pgrep -f "ppl -m smollm2-135m" >/dev/null || pgrep -f "w16a16.quarot" >/dev/null || pgrep -f "w8a8_rtn_had.quarot" >/dev/null; do sleep 5; done
echo "phase2 start $(date -u +%T)" >> $res/run.log
(ROWS="fp w8a8_rtn_had" HS_ROWS="fp w8a8_rtn_had" JOBS=2 THREADS=4 scripts/accuracy_table.sh $res > $res/hs.log 2>&1) &
mkdir -p /tmp/res40 && ln -sf /tmp/res/w16a16.quarot.safetensors /tmp/res/w8a8_rtn_had.quarot.safetensors /tmp/res40/
(CHUNKS=40 CALIB_WINDOWS=32 ROWS="fp w4a4kv4_rtn_had w4a4kv4_rtn_none w8a8_rtn_none w6a6_rtn_had w4a16_rtn_had k4v4_had w4a16_gptq_had w4a8kv4_gptq_had w16a16 w8a8_rtn_had" HS_ROWS="" JOBS=2 THREADS=4 scripts/accuracy_table.sh /tmp/res40 > /tmp/res40/table.log 2>&1) &
wait
