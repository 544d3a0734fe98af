# Shared by the tools/device/*.sh experiment scripts (sourced): data paths, `score ROW`
# (all WikiText-2 windows with the PyTorch runtime on the GPU) and `row NAME THREADS FLAGS...`
# (`quarot quantize` into $out, then score). Needs q, out and QUAROT_DATA set.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
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

# The spcl/QuaRot reference needs an HF checkpoint: transformers' own GGUF dequantizer
# writes one (the gguf wheel travels in the staged data).
export_hf_checkpoint() {  # gguf
  python3 -m pip install -q --no-index --no-deps --target /tmp/site "$data"/whl/*.whl \
    && PYTHONPATH=/tmp/site python3 "$repo/tools/reference/hf_model.py" --model "$1" --export --out /tmp/smollm2-hf
}
