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
repo=$(cd "$(dirname "$0")/../.." && pwd)
data=$QUAROT_DATA
test_text="$data/wikitext-2-raw-v1.test.txt"
calib="$data/wikitext-2-v1.valid.tokenized.txt"
mkdir -p "$out"
score() {
  python3 "$repo/tools/reference/quarot_runtime.py" ppl "$out/$1.quarot.safetensors" --text "$test_text" \
    --json "$out/$1.ppl.json" > /dev/null 2> "$out/$1.ppl.log"
  echo "$1: $(grep -m1 '"ppl"' "$out/$1.ppl.json")"
}
(
  python3 -m pip install -q --no-index --no-deps --target /tmp/site "$data"/whl/*.whl \
    && PYTHONPATH=/tmp/site python3 "$repo/tools/reference/hf_model.py" --model "$gguf" --export --out /tmp/smollm2-hf \
    && NSAMPLES=16 ROWS="w4a4kv4_gptq_had w4a4kv4_rtn_none" \
       "$repo/tools/reference/spcl_quarot/run_device.sh" /tmp/smollm2-hf "$out/spcl_calib16" "$test_text" "$calib"
) > "$out/spcl16.log" 2>&1 &
(
  $q -t 16 quantize --scheme W4A4KV4 --weights gptq --calib "$calib" --calib-windows 128 \
    -o "$out/w4a4kv4_gptq_had_calib128.quarot.safetensors" --json > "$out/w4a4kv4_gptq_had_calib128.quantize.json" \
    2> "$out/w4a4kv4_gptq_had_calib128.quantize.log" && score w4a4kv4_gptq_had_calib128
  for s in W4A16 W4A8KV4; do
    r=$(echo "$s" | tr 'A-Z' 'a-z')_gptq_had_calib128
    $q -q quantize --weights-from "$out/w4a4kv4_gptq_had_calib128.quarot.safetensors" --scheme $s \
      -o "$out/$r.quarot.safetensors" --json > "$out/$r.quantize.json" 2> "$out/$r.quantize.log" && score "$r"
  done
) &
wait
echo "calibration-size rows done"
