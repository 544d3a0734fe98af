#!/usr/bin/env bash
# Third lease (called by full_table.sh ref): the original QuaRot code on the same model and
# text (tools/reference/spcl_quarot, GPU), and our GPTQ calibrated through the quantized
# model (--calib-quantized; quantize on the CPU cores, scored by the PyTorch runtime).
set -uo pipefail
q=${1:?usage: reference_and_calib.sh QUAROT GGUF OUTDIR}
gguf=${2:?}
out=${3:?}
repo=$(cd "$(dirname "$0")/../.." && pwd)
data=$QUAROT_DATA
test_text="$data/wikitext-2-raw-v1.test.txt"
calib="$data/wikitext-2-v1.valid.tokenized.txt"
mkdir -p "$out"

score() {  # row
  python3 "$repo/tools/reference/quarot_runtime.py" ppl "$out/$1.quarot.safetensors" --text "$test_text" \
    --json "$out/$1.ppl.json" > /dev/null 2> "$out/$1.ppl.log"
  echo "$1: $(grep -m1 '"ppl"' "$out/$1.ppl.json")"
}
row() {  # name, threads, quantize flags...
  local name=$1 threads=$2
  shift 2
  $q -q -t "$threads" quantize "$@" --calib "$calib" -o "$out/$name.quarot.safetensors" --json \
    > "$out/$name.quantize.json" 2> "$out/$name.quantize.log" && score "$name"
}

# The reference needs an HF checkpoint: transformers' own GGUF dequantizer writes one.
(
  python3 -m pip install -q --no-index --no-deps --target /tmp/site "$data"/whl/*.whl \
    && PYTHONPATH=/tmp/site python3 "$repo/tools/reference/hf_model.py" --model "$gguf" --export --out /tmp/smollm2-hf \
    && "$repo/tools/reference/spcl_quarot/run_device.sh" /tmp/smollm2-hf "$out/spcl" "$test_text" "$calib" \
    && NSAMPLES=16 ROWS="w4a4kv4_gptq_had w4a16_gptq_had" \
       "$repo/tools/reference/spcl_quarot/run_device.sh" /tmp/smollm2-hf "$out/spcl_calib16" "$test_text" "$calib"
) > "$out/spcl.log" 2>&1 &

row w4a4kv4_gptq_had_cq 8 --scheme W4A4KV4 --weights gptq --calib-windows 16 --calib-quantized &
row w4a4kv4_gptq_had_best_cq 8 --scheme W4A4KV4 --weights gptq --calib-windows 16 --w-group 64 --w-asym \
  --a-group 64 --a-asym --calib-quantized &
wait
echo "reference and calib-quantized rows done"
