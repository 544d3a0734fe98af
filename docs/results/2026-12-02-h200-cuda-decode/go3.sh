#!/usr/bin/env bash
# Calls 2 + 3 (the real model, SmolLM2-135M-Instruct Q4_1 GGUF, 98 MB, over two calls
# made back to back while the machine stays warm):
#   call 2: carry .device/cgraph_a (model.part00, go3.sh)   command: bash .device/cgraph_a/go3.sh stage
#           (go3.sh travels in both folders; stage copies the first part to /tmp/cg_e2e)
#   call 3: carry .device/cgraph_b (model.part01, base/quarot, new/quarot, new/test_cuda_backend, lib/)
#           command: bash .device/cgraph_b/go3.sh run
# run: quantizes W8A8 and W4A4KV4 from the GGUF (new binary; the CPU code is the same),
# then `quarot --device cuda bench` of FP/W8A8/W4A4KV4 with the base binary, this
# branch's, and this branch's with QUAROT_CUDA_GRAPHS=0; perplexity on 4 windows and a
# greedy 64-token generation with both binaries (equal numbers / text expected).
set -u
D=$(cd "$(dirname "$0")" && pwd)
T=/tmp/cg_e2e
case ${1:?stage|run} in
  stage)
    rm -rf "$T" && mkdir -p "$T" && cp "$D/../cgraph_a/model.part00" "$T/" && ls -la "$T"
    exit 0
    ;;
esac
FINAL=${OUT:-$T/out}
OUT=$T/results
rm -rf "$OUT" && mkdir -p "$OUT" "$FINAL"
trap 'tar czf "$FINAL/call3.tgz" -C "$OUT" . ; cp "$OUT"/bench_*.json "$OUT/summary.txt" "$FINAL/" 2>/dev/null' EXIT
[ -f "$T/model.part00" ] || { echo "stage first"; exit 2; }
cat "$T/model.part00" "$D/model.part01" > "$T/smollm2.gguf"
extra=$(ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib 2>/dev/null | tr '\n' ':')
py=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null || true)
export LD_LIBRARY_PATH="$D/lib:${extra}${py}:${LD_LIBRARY_PATH:-}"
export OMP_WAIT_POLICY=PASSIVE
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$OUT/gpu.txt"
md5sum "$T/smollm2.gguf" | tee -a "$OUT/gpu.txt"
fp=$T/smollm2.gguf w8=$T/w8a8.quarot.safetensors w4=$T/w4a4kv4.quarot.safetensors
log() { echo "$(date -u +%T) $*" | tee -a "$OUT/run.log"; }
step() {
  local name=$1; shift
  local t0=$SECONDS
  "$@" > "$OUT/$name.json" 2>> "$OUT/run.err"
  log "$name: exit $? in $((SECONDS - t0)) s: $*"
}
if [ -x "$D/new/test_cuda_backend" ]; then
  t0=$SECONDS
  timeout 120 "$D/new/test_cuda_backend" > "$OUT/test_cuda_backend.log" 2>&1
  log "test_cuda_backend: exit $? in $((SECONDS - t0)) s"
  grep -E "FAILED|PASSED|steps direct" "$OUT/test_cuda_backend.log" | tee -a "$OUT/run.log"
fi
step quantize_w4a4kv4 "$D/new/quarot" -q quantize -m "$fp" --scheme W4A4KV4 --weights rtn --rotate hadamard -o "$w4" --json
step quantize_w8a8 "$D/new/quarot" -q quantize -m "$fp" --scheme W8A8 --weights rtn --rotate hadamard -o "$w8" --json
step bench_base "$D/base/quarot" -q --device cuda bench -m "$fp,$w8,$w4" --repeats 3 --json
step bench_new "$D/new/quarot" -q --device cuda bench -m "$fp,$w8,$w4" --repeats 3 --json
step bench_new_no_graphs env QUAROT_CUDA_GRAPHS=0 "$D/new/quarot" -q --device cuda bench -m "$fp,$w8,$w4" --repeats 3 --json
for v in base new; do
  for m in fp:$fp w4a4kv4:$w4; do
    step "ppl_${m%%:*}_$v" "$D/$v/quarot" -q --device cuda ppl -m "${m#*:}" --max-chunks 4 --json
    step "gen_${m%%:*}_$v" "$D/$v/quarot" -q --device cuda generate -m "${m#*:}" -p "The history of the printing press" \
      -n 64 --temperature 0 --json
  done
done
python3 - "$OUT" <<'PY' | tee "$OUT/summary.txt"
import json, os, sys
out = sys.argv[1]
def load(n):
    try:
        return json.load(open(os.path.join(out, n + ".json")))
    except Exception as e:
        return {"error": str(e)}
for n in ("bench_base", "bench_new", "bench_new_no_graphs"):
    b = load(n)
    for m in b.get("models", []):
        print(f"{n:20s} {os.path.basename(m['model'])[:28]:28s} prefill512 {m['prefill']['tokens_per_s']:9.0f} tok/s"
              f"  decode@512 {m['decode_after_prompt']['tokens_per_s']:7.1f}  decode@0 {m['decode_empty']['tokens_per_s']:7.1f} tok/s")
for m in ("fp", "w4a4kv4"):
    a, b = load(f"ppl_{m}_base"), load(f"ppl_{m}_new")
    print(f"ppl {m}: base {a.get('ppl')} new {b.get('ppl')} equal {a.get('ppl') == b.get('ppl')}")
    ga, gb = load(f"gen_{m}_base"), load(f"gen_{m}_new")
    print(f"generate {m}: same text {ga.get('text') == gb.get('text')}; new: {str(gb.get('text'))[:120]!r}")
    for k in ("decode_tokens_per_s", "tokens_per_s", "decode"):
        if k in gb: print(f"  generate {m} {k}: base {ga.get(k)} new {gb.get(k)}")
PY
