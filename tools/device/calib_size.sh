#!/usr/bin/env bash
# Fourth lease (called by full_table.sh calib): calibration size, ours and theirs.
#  * quarot, the paper recipe (W4A4KV4 GPTQ) with the paper's 128 calibration windows
#    (16 threads), then W4A16 / W4A8KV4 from the same weights;
#  * spcl/QuaRot with 16 calibration windows (ours default in the table), and its
#    no-rotation W4A4KV4 RTN row.
set -uo pipefail
q=${1:?usage: calib_size.sh QUAROT GGUF OUTDIR}
gguf=${2:?}
out=${3:?}
source "$(dirname "$0")/lib.sh"
(
  export_hf_checkpoint "$gguf" \
    && NSAMPLES=16 ROWS="w4a4kv4_gptq_had w4a4kv4_rtn_none" \
       "$repo/tools/reference/spcl_quarot/run_device.sh" /tmp/smollm2-hf "$out/spcl_calib16" "$test_text" "$calib"
) > "$out/spcl16.log" 2>&1 &
(
  row w4a4kv4_gptq_had_calib128 16 --scheme W4A4KV4 --weights gptq --calib-windows 128
  for s in W4A16 W4A8KV4; do
    r=$(echo "$s" | tr 'A-Z' 'a-z')_gptq_had_calib128
    $q -q quantize --weights-from "$out/w4a4kv4_gptq_had_calib128.quarot.safetensors" --scheme $s \
      -o "$out/$r.quarot.safetensors" --json > "$out/$r.quantize.json" 2> "$out/$r.quantize.log" && score "$r"
  done
) &
wait
echo "calibration-size rows done"
