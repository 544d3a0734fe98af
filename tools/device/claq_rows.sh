#!/usr/bin/env bash
# The CLAQ accuracy table of issue 10 on the GPU machine: every row quantized by
# `quarot quantize` on its 16 CPU cores (two workers of 8 threads), every file scored on all
# 148 WikiText-2 test windows by the independent PyTorch runtime on the GPU
# (tools/reference/quarot_runtime.py, which decodes codebook linears from the file's spec
# alone). One C++ row re-scores a CLAQ file as a cross-check. After the table, as time
# allows, the rows of issue 8 the C++ integer engine had not yet scored.
# Started by `tools/device/full_table.sh claq` (which brings the model and quarot over).
#   usage: [PLAN=table|outliers] claq_rows.sh QUAROT MODEL RES   (QUAROT_DATA must hold the data files)
# PLAN=outliers: only the --outliers sweep at 2.12 and 3.12 bits (below).
# Env: CALIB_WINDOWS (8) x CALIB_SEQLEN (2048) tokens of WikiText-2 validation, the same
# calibration text for every row. Outputs: <row>.quantize.json, <row>.torch.ppl.json,
# <row>.size (bytes of the file), claq_rows.log.
set -uo pipefail
q=${1:?usage: claq_rows.sh QUAROT MODEL RES}
model=${2:?}
res=${3:?}
data=${QUAROT_DATA:?}
here=$(cd "$(dirname "$0")" && pwd)
text="$data/wikitext-2-raw-v1.test.txt"
hs="$data/hellaswag_val_full.txt.bz2"
calib=(--calib "$data/wikitext-2-v1.valid.tokenized.txt" --calib-windows "${CALIB_WINDOWS:-8}"
  --calib-seqlen "${CALIB_SEQLEN:-2048}")
mkdir -p "$res"
log() { echo "$(date -u +%T) $*" >> "$res/claq_rows.log"; }

# name -> quantize flags. Integer budgets are the scheme W<b>A16; fractional ones are
# CLAQ's adaptive precision (--w-bits). Rotation: hadamard (QuaRot) or none.
spec() {
  local name=$1 method bits rot
  method=${name%%[0-9]*}
  bits=${name#"$method"}
  bits=${bits%_*}
  rot=${name##*_}
  [ "$rot" = had ] && rot=hadamard
  local b=(--scheme "W${bits%%.*}A16")
  [[ $bits == *.* ]] && b=(--w-bits "$bits")
  echo "--weights $method --rotate $rot ${b[*]}"
}
# Issue 8's rows (the recipes of scripts/accuracy_table.sh).
spec8() {
  case $1 in
    w8a8_rtn_had) echo "--scheme W8A8 --weights rtn --rotate hadamard" ;;
    w8a8_rtn_had_wasym) echo "--scheme W8A8 --weights rtn --rotate hadamard --w-asym" ;;
    w4a4kv4_rtn_had) echo "--scheme W4A4KV4 --weights rtn --rotate hadamard" ;;
    w4a4kv4_rtn_had_lm8) echo "--scheme W4A4KV4 --weights rtn --rotate hadamard --lm-head-bits 8" ;;
    w4a16_gptq_had_best) echo "--scheme W4A16 --weights gptq --rotate hadamard --w-group 64 --w-asym" ;;
  esac
}

quantize() {  # row threads flags...
  local row=$1 t=$2
  shift 2
  log "quantize $row ($*)"
  # shellcheck disable=SC2068  # the flags are words
  $q -q -t "$t" quantize -m "$model" $@ "${calib[@]}" -o "$res/$row.quarot.safetensors" \
    --json > "$res/$row.quantize.json" 2> "$res/$row.quantize.log"
  local rc=$?
  stat -c %s "$res/$row.quarot.safetensors" > "$res/$row.size" 2> /dev/null
  log "quantized $row rc=$rc $(cat "$res/$row.size" 2> /dev/null) bytes $(grep -m1 -o '"effective_bits_per_weight": [0-9.]*' "$res/$row.quantize.json")"
  touch "$res/$row.qdone"
}
wait_row() { while [ ! -f "$res/$1.qdone" ]; do sleep 3; done; [ -f "$res/$1.quarot.safetensors" ]; }
torch_ppl() {  # row
  wait_row "$1" || { log "torch ppl $1 skipped (no file)"; return; }
  python3 "$here/../reference/quarot_runtime.py" ppl "$res/$1.quarot.safetensors" --device cuda \
    --text "$text" --max-chunks 0 --json "$res/$1.torch.ppl.json" > /dev/null 2> "$res/$1.torch.ppl.log"
  log "torch ppl $1 rc=$? $(grep -m1 '"ppl"' "$res/$1.torch.ppl.json")"
}
cpu_ppl() {  # row threads [extra flags]
  local row=$1 t=$2
  shift 2
  wait_row "$row" || return
  log "cpu ppl $row $*"
  $q -q -t "$t" "$@" ppl -m "$res/$row.quarot.safetensors" --text "$text" --max-chunks 0 --json \
    > "$res/$row.cpu$*.ppl.json" 2> "$res/$row.cpu.ppl.log"
  log "cpu ppl $row $* rc=$? $(grep -m1 '"ppl"' "$res/$row.cpu$*.ppl.json") $(grep -m1 '"seconds"' "$res/$row.cpu$*.ppl.json")"
}
hellaswag() {  # row threads
  wait_row "$1" || return
  log "cpu hellaswag $1"
  $q -q -t "$2" eval --task hellaswag -m "$res/$1.quarot.safetensors" --data "$hs" --limit 0 --json \
    > "$res/$1.cpu.hs0.json" 2> "$res/$1.cpu.hs0.log"
  log "cpu hellaswag $1 rc=$? $(grep -m1 '"acc_norm"' "$res/$1.cpu.hs0.json") $(grep -m1 '"seconds"' "$res/$1.cpu.hs0.json")"
}

log "start on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x$(nproc); $(nvidia-smi -L | head -1); calib ${calib[*]:2}; plan ${PLAN:-table}"
if [ "${PLAN:-table}" = outliers ]; then
  # The --outliers sweep at the fractional budgets, rotated (the table's best setting):
  # 0, 0.5%, 1%, 2% of the weights kept exact, the same calibration text for every row;
  # four workers of 4 threads, the GPU scoring each file as it lands.
  ROWS=()
  for b in 2.12 3.12; do for o in 0 0.5 1 2; do ROWS+=("claq${b}_had_o$o"); done; done
  for w in 0 1 2 3; do
    (
      for ((i = w; i < ${#ROWS[@]}; i += 4)); do
        r=${ROWS[i]}
        b=${r#claq}
        b=${b%%_*}
        quantize "$r" 4 --weights claq --rotate hadamard --w-bits "$b" --outliers "${r##*_o}%"
      done
    ) &
  done
  (
    for r in "${ROWS[@]}"; do torch_ppl "$r"; done
    log "gpu lane done"
  ) &
  wait
  log "all done"
  exit 0
fi
# Cheap rows first (the GPU starts scoring at once), then the calibrated ones, the slowest
# budgets interleaved over the two workers.
ROWS=(rtn2_had rtn2_none rtn3_had rtn3_none rtn4_had rtn4_none
  claq2.12_had claq2.12_none claq3_had claq3_none gptq3_had gptq3_none claq2_had claq2_none
  gptq2_had gptq2_none claq3.12_had claq3.12_none claq4_had claq4_none gptq4_had gptq4_none)
(  # worker 0: even rows
  for ((i = 0; i < ${#ROWS[@]}; i += 2)); do quantize "${ROWS[i]}" 8 $(spec "${ROWS[i]}"); done
) &
(  # worker 1: odd rows
  for ((i = 1; i < ${#ROWS[@]}; i += 2)); do quantize "${ROWS[i]}" 8 $(spec "${ROWS[i]}"); done
) &
(  # gpu lane
  for r in "${ROWS[@]}"; do torch_ppl "$r"; done
  log "gpu lane done"
) &
wait
log "table done"
# The C++ engine on one CLAQ row (cross-check of the PyTorch decoder of the format).
cpu_ppl claq3_had 16
# Issue 8: the integer engine's missing rows, cheapest first.
for r in w8a8_rtn_had_wasym w4a4kv4_rtn_had w4a4kv4_rtn_had_lm8; do quantize "$r" 16 $(spec8 "$r"); done
cpu_ppl w8a8_rtn_had_wasym 16
cpu_ppl w4a4kv4_rtn_had 16
cpu_ppl w4a4kv4_rtn_had_lm8 16
hellaswag w8a8_rtn_had_wasym 16
quantize w8a8_rtn_had 16 $(spec8 w8a8_rtn_had)
hellaswag w8a8_rtn_had 16
log "all done"
