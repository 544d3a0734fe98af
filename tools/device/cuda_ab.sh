#!/usr/bin/env bash
# Two builds of `quarot` (CUDA) side by side on the default model, on the GPU machine:
# the same W4A4KV4 file, the same few WikiText-2 windows (the perplexities must agree),
# then `quarot --device cuda bench` alternating old / new, with and without CUDA graphs.
# For a change that should move speed and nothing else (e.g. a launch attribute).
#   here:    tools/device/cuda_e2e.sh pack BUILD_DIR   (model halves, libraries)
#            gzip -c OLD > .device/ab/quarot_old.gz; gzip -c NEW > .device/ab/quarot_new.gz
#   call 1:  carry .device/e2e_a   command: bash tools/device/cuda_e2e.sh stage
#   call 2:  carry .device/e2e_b .device/ab   command: bash tools/device/cuda_ab.sh [ROUNDS] [WINDOWS]
# Writes $OUT/ab.log, the JSON of each step and $OUT/ab_summary.json.
set -uo pipefail
rounds=${1:-2}
windows=${2:-4}
repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=/tmp/quarot_e2e
out=${OUT:-$tmp/out}
mkdir -p "$out"
[ -f "$tmp/model.part00" ] || { echo "call 'cuda_e2e.sh stage' first (within 30 s)"; exit 2; }
cat "$tmp/model.part00" "$repo/.device/e2e_b/model.part01" > "$tmp/model.gguf"
for b in old new; do
  gunzip -c "$repo/.device/ab/quarot_$b.gz" > "$tmp/quarot_$b" && chmod +x "$tmp/quarot_$b"
done
source "$(dirname "${BASH_SOURCE[0]}")/cuda_libs.sh"
use_cuda_libs "$repo/.device/e2e_b/lib"
export QUAROT_DATA=$tmp/data
log() { echo "$(date -u +%T) $*" | tee -a "$out/ab.log"; }
step() {  # name, then the command: stdout kept as JSON, stderr in the log
  local name=$1
  shift
  log "$name: $*"
  "$@" > "$out/$name.json" 2>> "$out/ab.err"
  log "$name: exit $?"
}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw --format=csv | tee "$out/gpu.txt"
w4=$tmp/w4a4kv4.quarot.safetensors
step quantize "$tmp/quarot_new" -q quantize -m "$tmp/model.gguf" --scheme W4A4KV4 --weights rtn --rotate hadamard \
  -o "$w4" --json
for b in old new; do
  step "ppl_$b" "$tmp/quarot_$b" -q --device cuda ppl -m "$w4" --max-chunks "$windows" --json
done
for r in $(seq 1 "$rounds"); do
  for g in 1 0; do
    for b in old new; do
      QUAROT_CUDA_GRAPHS=$g step "bench_${b}_graphs${g}_$r" "$tmp/quarot_$b" -q --device cuda bench \
        -m "$tmp/model.gguf,$w4" --json
    done
  done
done
python3 - "$out" <<'EOF'
import json, os, sys, glob, statistics
out = sys.argv[1]
summary = {}
for b in ("old", "new"):
    try:
        summary[f"ppl_{b}"] = json.load(open(os.path.join(out, f"ppl_{b}.json")))["ppl"]
    except Exception as e:
        summary[f"ppl_{b}"] = str(e)
rows = {}
for f in sorted(glob.glob(os.path.join(out, "bench_*.json"))):
    name = os.path.basename(f)[6:-5]  # old_graphs1_1
    b, g, _ = name.split("_")
    try:
        d = json.load(open(f))
    except Exception as e:
        continue
    for m in d.get("models", []):
        key = f"{b} {g} {m.get('description', m.get('model'))}"
        r = rows.setdefault(key, {"prefill": [], "decode_after_prompt": [], "decode_empty": []})
        for k in r:
            if k in m:
                r[k].append(m[k]["tokens_per_s"])
for key, r in sorted(rows.items()):
    med = {k: statistics.median(v) for k, v in r.items() if v}
    summary[key] = {"median_tokens_per_s": med, "all": r}
    print(key, {k: round(v, 1) for k, v in med.items()})
print("ppl", summary.get("ppl_old"), summary.get("ppl_new"))
json.dump(summary, open(os.path.join(out, "ab_summary.json"), "w"), indent=1)
EOF
