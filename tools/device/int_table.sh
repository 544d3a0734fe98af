#!/usr/bin/env bash
# The C++ integer engine on the GPU machine's 16-core Xeon (AVX-512 VNNI + AMX) against
# the simulated arithmetic, on every WikiText-2 window, plus the full HellaSwag rows
# rescored with lm-eval's normalization. Started by `tools/device/full_table.sh int`
# (which brings the model over in two halves); runs three lanes at once:
#   cpu lane 1 (8 threads): bench (all 16 threads, first, alone), then the RTN rows and
#                           their integer ppl, then integer HellaSwag (2000 tasks);
#   cpu lane 2 (8 threads): the GPTQ calibrations (paper recipe, best options) and the
#                           integer ppl of the GPTQ rows;
#   gpu lane:               tools/reference/quarot_runtime.py (independent PyTorch
#                           implementation of the simulated runtime) on every file as it
#                           appears: ppl on all windows, HellaSwag (full or 2000 tasks).
# Every output is <row>.<what>.json in RES; <row>.quarot.safetensors stay on the machine.
#   usage: int_table.sh QUAROT MODEL RES   (QUAROT_DATA must hold the three data files)
set -uo pipefail
q=${1:?usage: int_table.sh QUAROT MODEL RES}
model=${2:?}
res=${3:?}
data=${QUAROT_DATA:?}
here=$(cd "$(dirname "$0")/../.." && pwd)
runtime_py="$here/tools/reference/quarot_runtime.py"
text="$data/wikitext-2-raw-v1.test.txt"
hs="$data/hellaswag_val_full.txt.bz2"
calib=(--calib "$data/wikitext-2-v1.valid.tokenized.txt" --calib-windows "${CALIB_WINDOWS:-16}")
mkdir -p "$res"
log() { echo "$(date -u +%T) $*" >> "$res/int_table.log"; }

# row -> quantize arguments (same recipes as scripts/accuracy_table.sh)
spec() {
  case $1 in
    fp) echo "--scheme W16A16 --weights rtn --rotate none --embed-bits 32 --lm-head-bits 32" ;;
    w8a8_rtn_had) echo "--scheme W8A8 --weights rtn --rotate hadamard" ;;
    w4a4kv4_rtn_had) echo "--scheme W4A4KV4 --weights rtn --rotate hadamard" ;;
    w4a4kv4_gptq_had) echo "--scheme W4A4KV4 --weights gptq --rotate hadamard" ;;
    w4a16_gptq_had_best) echo "--scheme W4A16 --weights gptq --rotate hadamard --w-group 64 --w-asym" ;;
  esac
}
quantize() {  # row threads
  local row=$1 t=$2
  [ -f "$res/$row.quarot.safetensors" ] && return 0
  log "quantize $row"
  # shellcheck disable=SC2046  # spec holds several flags
  $q -q -t "$t" quantize -m "$model" $(spec "$row") "${calib[@]}" -o "$res/$row.tmp.quarot.safetensors" \
    --json > "$res/$row.quantize.json" 2> "$res/$row.quantize.log" &&
    mv "$res/$row.tmp.quarot.safetensors" "$res/$row.quarot.safetensors"
  log "quantized $row rc=$?"
}
retarget() {  # row source scheme-args...: the source's weights, another activation/KV scheme
  local row=$1 src=$2
  shift 2
  [ -f "$res/$row.quarot.safetensors" ] && return 0
  $q -q quantize --weights-from "$res/$src.quarot.safetensors" "$@" -o "$res/$row.tmp.quarot.safetensors" \
    --json > "$res/$row.quantize.json" 2> "$res/$row.quantize.log" &&
    mv "$res/$row.tmp.quarot.safetensors" "$res/$row.quarot.safetensors"
  log "retargeted $row rc=$?"
}
int_ppl() {  # row threads [extra]
  local row=$1 t=$2
  shift 2
  log "int ppl $row $*"
  $q -q -t "$t" "$@" ppl -m "$res/$row.quarot.safetensors" --text "$text" --max-chunks 0 --json \
    > "$res/$row.int.ppl.json" 2> "$res/$row.int.ppl.log"
  log "int ppl $row rc=$? $(grep -m1 '"ppl"' "$res/$row.int.ppl.json")"
}
int_hs() {  # row threads limit
  log "int hellaswag $1 limit $3"
  $q -q -t "$2" eval --task hellaswag -m "$res/$1.quarot.safetensors" --data "$hs" --limit "$3" --json \
    > "$res/$1.int.hs$3.json" 2> "$res/$1.int.hs$3.log"
  log "int hellaswag $1 rc=$? $(grep -m1 '"acc_norm"' "$res/$1.int.hs$3.json")"
}
wait_file() { while [ ! -f "$res/$1.quarot.safetensors" ]; do sleep 5; done; }
torch_ppl() {
  wait_file "$1"
  python3 "$runtime_py" ppl "$res/$1.quarot.safetensors" --device cuda --text "$text" --max-chunks 0 \
    --json "$res/$1.torch.ppl.json" > /dev/null 2> "$res/$1.torch.ppl.log"
  log "torch ppl $1 rc=$? $(grep -m1 '"ppl"' "$res/$1.torch.ppl.json")"
}
torch_hs() {  # row limit (0 = all 10,042)
  wait_file "$1"
  python3 "$runtime_py" hellaswag "$res/$1.quarot.safetensors" --device cuda --batch 16 --data "$hs" \
    --limit "$2" --json "$res/$1.torch.hs$2.json" > /dev/null 2> "$res/$1.torch.hs$2.log"
  log "torch hellaswag $1 limit $2 rc=$? $(grep -m1 '"acc_norm"' "$res/$1.torch.hs$2.json")"
}

log "start on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x$(nproc)"
grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E 'avx512f|avx512_vnni|amx' | tr '\n' ' ' >> "$res/int_table.log"
echo >> "$res/int_table.log"

# Bench first, alone on the CPU: FP32 vs the integer W4A4KV4 and W8A8 files (all threads).
quantize w4a4kv4_rtn_had 16
quantize w8a8_rtn_had 16
log "bench"
$q bench -m "$model,$res/w8a8_rtn_had.quarot.safetensors,$res/w4a4kv4_rtn_had.quarot.safetensors" --json \
  > "$res/bench_16_threads.json" 2> "$res/bench.log"
log "bench rc=$?"

# gpu lane
(
  quantize fp 2
  torch_hs fp 0
  torch_ppl w8a8_rtn_had
  torch_ppl w4a4kv4_rtn_had
  torch_ppl w4a4kv4_gptq_had
  torch_hs w4a4kv4_gptq_had 0
  torch_ppl w4a8kv4_gptq_had
  torch_hs w4a4kv4_gptq_had 2000
  torch_ppl w4a4kv4_gptq_had_best
  torch_hs w4a4kv4_gptq_had_best 0
  torch_hs w8a8_rtn_had 0
  log "gpu lane done"
) &

# cpu lane 2: GPTQ rows
(
  quantize w4a4kv4_gptq_had 8
  retarget w4a8kv4_gptq_had w4a4kv4_gptq_had --scheme W4A8KV4
  int_ppl w4a4kv4_gptq_had 8
  quantize w4a16_gptq_had_best 8
  retarget w4a4kv4_gptq_had_best w4a16_gptq_had_best --scheme W4A4KV4 --a-group 64 --a-asym
  int_ppl w4a8kv4_gptq_had 8
  int_ppl w4a4kv4_gptq_had_best 8
  log "cpu lane 2 done"
) &

# cpu lane 1: RTN rows, then integer HellaSwag on the paper-recipe GPTQ row
(
  int_ppl w8a8_rtn_had 8
  int_ppl w4a4kv4_rtn_had 8
  # Each ISA path end to end on 4 windows, and the simulated reference.
  for isa in amx avx512vnni avx512 avx2 scalar; do
    $q -q -t 8 --isa $isa ppl -m "$res/w4a4kv4_rtn_had.quarot.safetensors" --text "$text" --max-chunks 4 --json \
      > "$res/w4a4kv4_rtn_had.$isa.ppl4.json" 2> "$res/w4a4kv4_rtn_had.$isa.ppl4.log"
    log "isa $isa rc=$? $(grep -m1 '"ppl"' "$res/w4a4kv4_rtn_had.$isa.ppl4.json")"
  done
  $q -q -t 8 --simulate ppl -m "$res/w4a4kv4_rtn_had.quarot.safetensors" --text "$text" --max-chunks 4 --json \
    > "$res/w4a4kv4_rtn_had.simulate.ppl4.json" 2> "$res/w4a4kv4_rtn_had.simulate.ppl4.log"
  log "simulate rc=$? $(grep -m1 '"ppl"' "$res/w4a4kv4_rtn_had.simulate.ppl4.json")"
  wait_file w4a4kv4_gptq_had
  int_hs w4a4kv4_gptq_had 8 2000
  log "cpu lane 1 done"
) &
wait
log "all done"
