#!/usr/bin/env bash
# Reproduces the QuaRot accuracy table on the default model: WikiText-2 test ppl
# (seqlen 2048, all windows unless CHUNKS is set) for FP and each scheme, plus the
# time every quantize took, and HellaSwag acc_norm for FP, W8A8 and W4A4KV4-GPTQ.
#   QUAROT=build/release/quarot CHUNKS=0 HS_LIMIT=2000 CALIB_WINDOWS=128 scripts/accuracy_table.sh OUTDIR
# HS_ROWS="" skips HellaSwag. JOBS=N runs N rows at once, each with THREADS threads (many small jobs use a
# many-core machine better than one job with all cores).
# GPTQ weights do not depend on the activation/KV scheme (calibration runs with them
# off), so w4a16_gptq_had and w4a8kv4_gptq_had reuse w4a4kv4_gptq_had's weights
# (`quantize --weights-from`) instead of calibrating three times; *_best rows add the
# beyond-paper options (weight groups of 64, asymmetric weights, asymmetric
# activation groups of 64; _down8 keeps down_proj inputs at 8 bits).
# EVALUATOR=torch scores the quantized files with tools/reference/quarot_runtime.py (an independent
# PyTorch implementation of the runtime, e.g. on a GPU: PYTHON names its interpreter, TORCH_DEVICE its
# device) instead of `quarot ppl|eval`; the fp row is then the unrotated W16A16 file.
# Writes OUTDIR/<row>.quantize.json, OUTDIR/<row>.ppl.json, OUTDIR/<row>.hellaswag.json, OUTDIR/table.md.
set -euo pipefail
out=${1:?usage: accuracy_table.sh OUTDIR}
mkdir -p "$out"
q=${QUAROT:-build/release/quarot}
model=${MODEL:-smollm2-135m}
data=${QUAROT_DATA:-../shared/data}
chunks=${CHUNKS:-0}
hs_limit=${HS_LIMIT:-2000}
calib_windows=${CALIB_WINDOWS:-128}
jobs=${JOBS:-1}
threads=${THREADS:-0}
rows=${ROWS:-"fp w16a16 w8a8_rtn_none w8a8_rtn_had w6a6_rtn_had w4a16_rtn_had w4a16_gptq_had w4a8kv4_gptq_had w4a4kv4_rtn_none w4a4kv4_rtn_had w4a4kv4_gptq_had k4v4_had w8a8_rtn_had_wasym w4a16_gptq_had_best w4a4kv4_gptq_had_best"}
hs_rows=${HS_ROWS-"fp w8a8_rtn_had w4a4kv4_gptq_had"}
evaluator=${EVALUATOR:-quarot}
py=${PYTHON:-python3}
torch_device=${TORCH_DEVICE:-cuda}
runtime_py="$(dirname "$0")/../tools/reference/quarot_runtime.py"
case $evaluator in quarot | torch) ;; *) echo "accuracy_table.sh: EVALUATOR must be quarot or torch" >&2; exit 2 ;; esac

spec() {  # row -> "scheme weights rotate"
  case $1 in
    fp) echo "W16A16 rtn none" ;;  # only for EVALUATOR=torch, which needs a file
    w16a16) echo "W16A16 rtn hadamard" ;;
    w8a8_rtn_none) echo "W8A8 rtn none" ;;
    w8a8_rtn_had) echo "W8A8 rtn hadamard" ;;
    w6a6_rtn_had) echo "W6A6 rtn hadamard" ;;
    w4a16_rtn_had) echo "W4A16 rtn hadamard" ;;
    w4a16_gptq_had) echo "W4A16 gptq hadamard" ;;
    w4a8kv4_gptq_had) echo "W4A8KV4 gptq hadamard" ;;
    w4a4kv4_rtn_none) echo "W4A4KV4 rtn none" ;;
    w4a4kv4_rtn_had) echo "W4A4KV4 rtn hadamard" ;;
    w4a4kv4_gptq_had) echo "W4A4KV4 gptq hadamard" ;;
    k4v4_had) echo "K4V4 rtn hadamard" ;;
    w4a16_gptq_had_best) echo "W4A16 gptq hadamard --w-group 64 --w-asym" ;;
    w4a4kv4_gptq_had_best) echo "W4A4KV4 gptq hadamard --a-group 64 --a-asym" ;;
    w4a4kv4_gptq_had_best_down8) echo "W4A4KV4 gptq hadamard --a-group 64 --a-asym --a-bits-at down=8" ;;
    w8a8_rtn_had_wasym) echo "W8A8 rtn hadamard --w-asym" ;;
    *) echo "accuracy_table.sh: unknown row $1" >&2; exit 2 ;;
  esac
}

model_for() {
  if [ "$1" = fp ] && [ "$evaluator" = quarot ]; then echo "$model"; else echo "$out/$1.quarot.safetensors"; fi
}

# The row whose weights a row reuses, if any.
weights_source() {
  case $1 in
    w4a16_gptq_had | w4a8kv4_gptq_had) echo w4a4kv4_gptq_had ;;
    w4a4kv4_gptq_had_best | w4a4kv4_gptq_had_best_down8) echo w4a16_gptq_had_best ;;
  esac
}

quantize_row() {
  local row=$1 scheme weights rotate extra src
  [ -f "$out/$row.quarot.safetensors" ] && return 0
  read -r scheme weights rotate extra <<<"$(spec "$row")"
  src=$(weights_source "$row")
  if [ -n "$src" ]; then
    # One calibration per weight recipe, even with parallel jobs.
    (flock 9; quantize_row "$src") 9>"$out/.$src.lock"
    # shellcheck disable=SC2086  # extra holds several flags
    $q -q quantize --weights-from "$out/$src.quarot.safetensors" --scheme "$scheme" $extra \
      -o "$out/$row.quarot.safetensors" --json > "$out/$row.quantize.json" 2> "$out/$row.quantize.log"
  else
    # shellcheck disable=SC2086
    $q -q -t "$threads" quantize -m "$model" --scheme "$scheme" --weights "$weights" --rotate "$rotate" $extra \
      --calib "$data/wikitext-2-v1.valid.tokenized.txt" --calib-windows "$calib_windows" \
      -o "$out/$row.quarot.safetensors" --json > "$out/$row.quantize.json" 2> "$out/$row.quantize.log"
  fi
}

run_row() {
  local row=$1
  [ "$row" = fp ] && [ "$evaluator" = quarot ] || quantize_row "$row"
  if [ -f "$out/$row.ppl.json" ]; then
    :
  elif [ "$evaluator" = torch ]; then
    "$py" "$runtime_py" ppl "$(model_for "$row")" --device "$torch_device" --text "$data/wikitext-2-raw-v1.test.txt" \
      --max-chunks "$chunks" --json "$out/$row.ppl.json" > /dev/null 2> "$out/$row.ppl.log"
  else
    $q -q -t "$threads" ppl -m "$(model_for "$row")" \
      --text "$data/wikitext-2-raw-v1.test.txt" --max-chunks "$chunks" --json > "$out/$row.ppl.json" 2> "$out/$row.ppl.log"
  fi
  echo "$row: $(grep -m1 '"ppl"' "$out/$row.ppl.json")" >&2
  case " $hs_rows " in *" $row "*) run_hellaswag "$row" ;; esac
}
run_hellaswag() {
  local row=$1
  if [ ! -f "$out/$row.hellaswag.json" ] && [ "$evaluator" = torch ]; then
    "$py" "$runtime_py" hellaswag "$(model_for "$row")" --device "$torch_device" --batch 16 \
      --data "$data/hellaswag_val_full.txt.bz2" --limit "$hs_limit" --json "$out/$row.hellaswag.json" > /dev/null \
      2> "$out/$row.hellaswag.log"
  fi
  [ -f "$out/$row.hellaswag.json" ] || $q -q -t "$threads" eval --task hellaswag -m "$(model_for "$row")" \
      --data "$data/hellaswag_val_full.txt.bz2" --limit "$hs_limit" --json > "$out/$row.hellaswag.json" \
      2> "$out/$row.hellaswag.log"
  echo "$row hellaswag: $(grep -m1 '"acc_norm"' "$out/$row.hellaswag.json")" >&2
}
# Simple job pool: at most $jobs rows at a time.
for row in $rows; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_row "$row" &
done
wait
python3 - "$out" $rows <<'PY'
import json, os, sys
out, rows = sys.argv[1], sys.argv[2:]
def load(p):
    return json.load(open(p)) if os.path.exists(p) else None
fp = load(f"{out}/fp.ppl.json")
lines = ["| row | ppl | vs FP | quantize s | HellaSwag acc_norm |", "|---|---|---|---|---|"]
def secs_of(qz):
    if not qz:
        return ""
    if "weights_from" in qz:  # re-targeted: the calibration is the source row's
        src = os.path.basename(qz["weights_from"]).split(".")[0]
        return f"(weights of {src})"
    return f"{qz.get('total_seconds', float('nan')):.1f}"
for r in rows:
    p, qz, hs = load(f"{out}/{r}.ppl.json"), load(f"{out}/{r}.quantize.json"), load(f"{out}/{r}.hellaswag.json")
    ppl = p["ppl"] if p else float("nan")
    rel = f"{100*(ppl/fp['ppl']-1):+.2f}%" if (p and fp) else ""
    secs = secs_of(qz)
    acc = f"{hs['acc_norm']:.4f}" if hs else ""
    lines.append(f"| {r} | {ppl:.4f} | {rel} | {secs} | {acc} |")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
