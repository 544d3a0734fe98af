#!/usr/bin/env bash
# The default model end to end on the GPU (issue 9): `quarot --device cuda` against the
# CPU engine on the same files, and the GPU's prefill/decode speed, FP16 vs W4A4KV4.
# The model (98 MB) is over one device call's 64 MiB carry limit, so it travels in two
# halves over two calls made back to back (the machine stays warm 30 s):
#   here:    tools/device/cuda_e2e.sh pack BUILD_DIR     # BUILD_DIR: portable, -DQUAROT_CUDA=ON
#   call 1:  carry .device/e2e_a   command: bash tools/device/cuda_e2e.sh stage
#   call 2:  carry .device/e2e_b   command: bash tools/device/cuda_e2e.sh run [CPU_WINDOWS]
# `run` writes $OUT/e2e.log and the JSON of every step to $OUT.
set -uo pipefail
cmd=${1:?usage: cuda_e2e.sh pack BUILD_DIR | stage | run [CPU_WINDOWS]}
repo=$(cd "$(dirname "$0")/../.." && pwd)
model_name=SmolLM2-135M-Instruct.Q4_1.gguf
tmp=/tmp/quarot_e2e

case $cmd in
  pack)
    build=${2:?usage: cuda_e2e.sh pack BUILD_DIR}
    model=${QUAROT_CACHE:-$HOME/.cache/quarot}/models/smollm2-135m/$model_name
    data=${QUAROT_DATA:-$repo/../shared/data}
    a=$repo/.device/e2e_a b=$repo/.device/e2e_b
    rm -rf "$a" "$b" && mkdir -p "$a/data" "$b/lib"
    split -n 2 -d "$model" "$a/model.part"
    mv "$a/model.part01" "$b/"
    cp "$data/wikitext-2-raw-v1.test.txt" "$a/data/"
    cp "$build/quarot" "$b/"
    # Shared libraries a bare GPU image may lack (CUDA's own come from the machine).
    for lib in $(ldd "$build/quarot" | awk '/libfmt|libgomp|libbz2|libstdc\+\+|libgcc_s/ {print $3}'); do
      cp -L "$lib" "$b/lib/"
    done
    du -sh "$a" "$b"
    ;;
  stage)
    rm -rf "$tmp" && mkdir -p "$tmp" && cp -r "$repo/.device/e2e_a/." "$tmp/"
    echo "staged $(du -sh "$tmp" | cut -f1) in $tmp"
    ;;
  run)
    windows=${2:-32}
    out=${OUT:-$tmp/out}
    mkdir -p "$out"
    [ -f "$tmp/model.part00" ] || { echo "call 'stage' first (within 30 s)"; exit 2; }
    cp "$repo/.device/e2e_b/model.part01" "$tmp/"
    cat "$tmp/model.part00" "$tmp/model.part01" > "$tmp/$model_name"
    q=$tmp/quarot
    cp "$repo/.device/e2e_b/quarot" "$q"
    source "$(dirname "${BASH_SOURCE[0]}")/cuda_libs.sh"
    use_cuda_libs "$repo/.device/e2e_b/lib"
    export QUAROT_DATA=$tmp/data
    log() { echo "$(date -u +%T) $*" | tee -a "$out/e2e.log"; }
    step() {  # name, then the command; keeps stdout as JSON, stderr in the log
      local name=$1; shift
      log "$name: $*"
      local t0=$SECONDS
      "$@" > "$out/$name.json" 2>> "$out/e2e.err"
      log "$name: exit $? in $((SECONDS - t0)) s"
    }
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw --format=csv | tee "$out/gpu.txt"
    lscpu | grep -E "Model name|^CPU\(s\)" | tee -a "$out/gpu.txt"
    fp=$tmp/$model_name
    w4=$tmp/w4a4kv4.quarot.safetensors w8=$tmp/w8a8.quarot.safetensors
    step quantize_w4a4kv4 "$q" -q quantize -m "$fp" --scheme W4A4KV4 --weights rtn --rotate hadamard -o "$w4" --json
    step quantize_w8a8 "$q" -q quantize -m "$fp" --scheme W8A8 --weights rtn --rotate hadamard -o "$w8" --json
    # Agreement: the same windows on both engines.
    for row in fp:$fp w8a8:$w8 w4a4kv4:$w4; do
      name=${row%%:*} file=${row#*:}
      step "ppl_${name}_cuda" "$q" -q --device cuda ppl -m "$file" --max-chunks "$windows" --json
      step "ppl_${name}_cpu" "$q" -q -t 16 ppl -m "$file" --max-chunks "$windows" --json
    done
    # Every window on the GPU.
    step ppl_w4a4kv4_cuda_all "$q" -q --device cuda ppl -m "$w4" --max-chunks 0 --json
    step ppl_fp_cuda_all "$q" -q --device cuda ppl -m "$fp" --max-chunks 0 --json
    # Speed: FP16 vs W8A8 vs W4A4KV4 in one run on the GPU.
    step bench_cuda "$q" -q --device cuda bench -m "$fp,$w8,$w4" --json
    # One file with every step's JSON (a call brings back at most 8 files).
    python3 - "$out" <<'EOF'
import json, sys, os, glob
out = sys.argv[1]
steps = {}
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    if os.path.basename(f) == "e2e_results.json":
        continue
    try:
        steps[os.path.basename(f)[:-5]] = json.load(open(f))
    except Exception as e:
        steps[os.path.basename(f)[:-5]] = {"error": str(e)}
json.dump(steps, open(os.path.join(out, "e2e_results.json"), "w"), indent=1)
def ppl(name):
    try:
        return json.load(open(os.path.join(out, name + ".json")))["ppl"]
    except Exception as e:
        return None
for row in ("fp", "w8a8", "w4a4kv4"):
    g, c = ppl(f"ppl_{row}_cuda"), ppl(f"ppl_{row}_cpu")
    if g and c:
        print(f"{row:8s} cuda {g:.6f} cpu {c:.6f} diff {100 * (g - c) / c:+.4f}%")
EOF
    ;;
  *)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
