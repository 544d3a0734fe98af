#!/usr/bin/env bash
# The main job: installs what is missing, builds, fetches the default model, and
# compares full precision with QuaRot W4A4KV4 on a slice of WikiText-2 test.
#   scripts/demo.sh            # slice: first 4 windows of 2048 tokens (8,192 tokens)
#   CHUNKS=0 scripts/demo.sh   # all 148 windows (slow on 2 cores)
#   CALIB_WINDOWS=128 WEIGHTS=gptq  # the paper's calibration (default here: 4 windows, to stay quick)
set -euo pipefail
cd "$(dirname "$0")/.."
chunks=${CHUNKS:-4}
weights=${WEIGHTS:-gptq}
calib_windows=${CALIB_WINDOWS:-4}
scripts/install_deps.sh
scripts/build.sh build/release -DQUAROT_BUILD_TESTS=OFF -DQUAROT_BUILD_BENCH=OFF
model=$(scripts/fetch_model.sh smollm2-135m)
q=build/release/quarot
data=${QUAROT_DATA:-../shared/data}
text=$data/wikitext-2-raw-v1.test.txt
calib=$data/wikitext-2-v1.valid.tokenized.txt
out=${QUAROT_CACHE:-$HOME/.cache/quarot}/quantized
mkdir -p "$out"
echo "== quarot demo: SmolLM2-135M-Instruct, WikiText-2 test, first $chunks windows of 2048 tokens (0 = all) =="
echo "-- generate (FP) --"
$q generate -m "$model" -p "The capital of France is" -n 24
echo "-- FP perplexity --"
$q ppl -m "$model" --text "$text" --max-chunks "$chunks" --json | tee "$out/demo_fp.json"
echo "-- QuaRot W4A4KV4 ($weights, hadamard rotation, calibration: $calib_windows windows of WikiText-2 validation) --"
$q quantize -m "$model" --scheme W4A4KV4 --weights "$weights" --rotate hadamard \
  --calib "$calib" --calib-windows "$calib_windows" -o "$out/smollm2-135m.w4a4kv4.quarot.safetensors"
$q ppl -m "$out/smollm2-135m.w4a4kv4.quarot.safetensors" --text "$text" --max-chunks "$chunks" --json \
  | tee "$out/demo_w4a4kv4.json"
python3 - "$out/demo_fp.json" "$out/demo_w4a4kv4.json" <<'PY'
import json, sys
fp, q = (json.load(open(p)) for p in sys.argv[1:3])
print(f"\nWikiText-2 test, {fp['chunks']} x {fp['seqlen']} tokens:  FP ppl {fp['ppl']:.3f}   "
      f"QuaRot W4A4KV4 ppl {q['ppl']:.3f}   (+{100*(q['ppl']/fp['ppl']-1):.1f}%)")
PY
