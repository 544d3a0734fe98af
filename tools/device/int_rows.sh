#!/usr/bin/env bash
# The rows of the accuracy table that the C++ integer engine had not yet scored
# (issue 8): all 148 WikiText-2 windows and HellaSwag by quarot itself, on the GPU
# machine. Started by `tools/device/full_table.sh rows` (which brings the model and a
# portable CUDA-enabled quarot over); two lanes at once:
#   cpu lane (16 threads, AVX-512 VNNI / AMX integer kernels): the GPTQ calibrations
#     (paper recipe, best options), then the rows only the CPU runs as integers (the
#     best-options row has group-wise asymmetric weights and activations, which the
#     CUDA backend serves through its FP16 fallback), then the others as time allows;
#   gpu lane (--device cuda: the same integer GEMMs, bit-exact with the CPU's, on int8
#     tensor cores): the per-channel symmetric rows.
# Every output is <row>.<engine>.<what>.json in RES (engine cpu or cuda).
#   usage: [PLAN=checks|full|bench|hs|w4a8|w4a8hs|w4a8one|w4a8best|w4a8bestprof|amx|int8attn] int_rows.sh QUAROT MODEL RES   (QUAROT_DATA must hold the data files)
# PLAN=bench: tests and benchmarks only. PLAN=full: the integer HellaSwag rows and the W4A8KV4 three-way check (below).
set -uo pipefail
q=${1:?usage: int_rows.sh QUAROT MODEL RES}
model=${2:?}
res=${3:?}
data=${QUAROT_DATA:?}
text="$data/wikitext-2-raw-v1.test.txt"
hs="$data/hellaswag_val_full.txt.bz2"
calib=(--calib "$data/wikitext-2-v1.valid.tokenized.txt" --calib-windows "${CALIB_WINDOWS:-16}")
mkdir -p "$res"
log() { echo "$(date -u +%T) $*" >> "$res/int_rows.log"; }

spec() {  # the recipes of scripts/accuracy_table.sh
  case $1 in
    w8a8_rtn_had) echo "--scheme W8A8 --weights rtn --rotate hadamard" ;;
    w8a8_rtn_had_wasym) echo "--scheme W8A8 --weights rtn --rotate hadamard --w-asym" ;;
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
  $q -q -t "$t" quantize -m "$model" $(spec "$row") "${calib[@]}" -o "$res/$row.quarot.safetensors" \
    --json > "$res/$row.quantize.json" 2> "$res/$row.quantize.log"
  log "quantized $row rc=$?"
}
retarget() {  # row source scheme-args...: the source's weights, another activation/KV scheme
  local row=$1 src=$2
  shift 2
  $q -q quantize --weights-from "$res/$src.quarot.safetensors" "$@" -o "$res/$row.quarot.safetensors" \
    --json > "$res/$row.quantize.json" 2> "$res/$row.quantize.log"
  log "retargeted $row rc=$?"
}
wait_file() { while [ ! -f "$res/$1.quarot.safetensors" ]; do sleep 5; done; }
engine_flags() {  # cpu | cuda | sim (the C++ simulated arithmetic on the CPU)
  case $1 in sim) echo "--device cpu --simulate" ;; *) echo "--device $1" ;; esac
}
ppl() {  # engine row threads
  local engine=$1 row=$2 t=$3
  wait_file "$row"
  log "$engine ppl $row"
  # shellcheck disable=SC2046  # engine_flags holds two flags
  $q -q -t "$t" $(engine_flags "$engine") ppl -m "$res/$row.quarot.safetensors" --text "$text" --max-chunks 0 --json \
    > "$res/$row.$engine.ppl.json" 2> "$res/$row.$engine.ppl.log"
  log "$engine ppl $row rc=$? $(grep -m1 '"ppl"' "$res/$row.$engine.ppl.json") $(grep -m1 '"seconds"' "$res/$row.$engine.ppl.json")"
}
hellaswag() {  # engine row threads limit (0 = all 10,042)
  local engine=$1 row=$2 t=$3 limit=$4
  wait_file "$row"
  log "$engine hellaswag $row limit $limit"
  $q -q -t "$t" --device "$engine" eval --task hellaswag -m "$res/$row.quarot.safetensors" --data "$hs" \
    --limit "$limit" --json > "$res/$row.$engine.hs$limit.json" 2> "$res/$row.$engine.hs$limit.log"
  log "$engine hellaswag $row limit $limit rc=$? $(grep -m1 '"acc_norm"' "$res/$row.$engine.hs$limit.json") $(grep -m1 '"seconds"' "$res/$row.$engine.hs$limit.json")"
}

torch_ppl() {  # row: the independent PyTorch runtime (simulated arithmetic) on the GPU
  wait_file "$1"
  log "torch ppl $1"
  python3 "$(dirname "$0")/../reference/quarot_runtime.py" ppl "$res/$1.quarot.safetensors" --device cuda \
    --text "$text" --max-chunks 0 --json "$res/$1.torch.ppl.json" > /dev/null 2> "$res/$1.torch.ppl.log"
  log "torch ppl $1 rc=$? $(grep -m1 '"ppl"' "$res/$1.torch.ppl.json")"
}

# The W4A8KV4 rows: GPTQ on QT threads, retargeted to W4A8KV4, HellaSwag on all tasks on HT.
w4a8_paper() {  # QT HT
  quantize w4a4kv4_gptq_had "$1"
  retarget w4a8kv4_gptq_had w4a4kv4_gptq_had --scheme W4A8KV4
  hellaswag cpu w4a8kv4_gptq_had "$2" 0
}
w4a8_best() {  # QT HT
  quantize w4a16_gptq_had_best "$1"
  retarget w4a8kv4_gptq_had_best w4a16_gptq_had_best --scheme W4A8KV4 --a-group 64 --a-asym
  hellaswag cpu w4a8kv4_gptq_had_best "$2" 0
}
# The 16-thread profile bench (FP32 vs the RTN W8A8 / W4A4KV4 files), alone on the machine.
profile_bench() {
  quantize w8a8_rtn_had 16
  quantize w4a4kv4_rtn_had 16
  $q -t 16 bench -m "$model,$res/w8a8_rtn_had.quarot.safetensors,$res/w4a4kv4_rtn_had.quarot.safetensors" \
    --repeats 2 --profile --json > "$res/bench_16_threads_profile.json" 2> "$res/bench.log"
  log "bench rc=$?"
}

log "start on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x$(nproc); $(nvidia-smi -L | head -1); plan ${PLAN:-checks}"
if [ "${PLAN:-checks}" = bench ]; then
  # The short lease: this CPU's kernel tests, the CUDA backend's tests, the GPU and the
  # 16-thread CPU benchmarks of FP32 vs the RTN W8A8 / W4A4KV4 files.
  quantize w8a8_rtn_had 16
  quantize w4a4kv4_rtn_had 16
  three="$model,$res/w8a8_rtn_had.quarot.safetensors,$res/w4a4kv4_rtn_had.quarot.safetensors"
  for f in "$data"/extra/*.gz; do [ -f "$f" ] && gunzip -kf "$f" && chmod +x "${f%.gz}"; done
  "$data/extra/test_kernels" > "$res/test_kernels_xeon.log" 2>&1 &
  "$data/extra/test_cuda_backend" > "$res/test_cuda_backend.log" 2>&1
  log "test_cuda_backend rc=$? $(grep -E '^\[  (PASSED|FAILED)  \]' "$res/test_cuda_backend.log" | tr '\n' ' ')"
  $q -q -t 2 --device cuda bench -m "$three" --repeats 3 --json > "$res/bench_cuda.json" 2> "$res/bench_cuda.log"
  log "cuda bench rc=$?"
  wait
  log "test_kernels $(grep -E '^\[  (PASSED|FAILED)  \]' "$res/test_kernels_xeon.log" | tr '\n' ' ')"
  $q -t 16 bench -m "$three" --repeats 2 --profile --json > "$res/bench_16_threads_profile.json" 2> "$res/bench.log"
  log "bench rc=$?"
  log "all done"
  exit 0
fi
if [ "${PLAN:-checks}" = amx ]; then
  # The 16-thread CPU benches alone on the machine (AMX vs FP32): the profile bench, then
  # three repetitions without profiling on huge-page weight memory (the default) and with
  # QUAROT_HUGE_PAGES=0 (4 KiB pages).
  profile_bench
  three="$model,$res/w8a8_rtn_had.quarot.safetensors,$res/w4a4kv4_rtn_had.quarot.safetensors"
  $q -t 16 bench -m "$three" --repeats 3 --json > "$res/bench_16_threads.json" 2> "$res/bench16.log"
  log "bench 16 rc=$?"
  QUAROT_HUGE_PAGES=0 $q -t 16 bench -m "$three" --repeats 3 --json > "$res/bench_16_threads_4k_pages.json" 2> "$res/bench16_4k.log"
  log "bench 16 (4 KiB pages) rc=$?"
  log "all done"
  exit 0
fi
if [ "${PLAN:-checks}" = int8attn ]; then
  # The int8 prefill attention (2026-12-04) on this Xeon: the attention and backend tests
  # on the amx and avx512vnni paths, then FP32 vs W4A4KV4 at 16 threads with the int8
  # products on and off (QUAROT_INT8_ATTENTION), alternating, three runs each.
  for f in "$data"/extra/*.gz; do [ -f "$f" ] && gunzip -kf "$f" && chmod +x "${f%.gz}"; done
  for isa in amx avx512vnni; do
    QUAROT_ISA=$isa "$data/extra/test_kernels" --gtest_filter='*KvQuant*:*KvPrefill*:CpuBackendInteger.*' \
      > "$res/test_kernels_$isa.log" 2>&1
    log "test_kernels $isa rc=$? $(grep -E '^\[  (PASSED|FAILED)  \]' "$res/test_kernels_$isa.log" | tr '\n' ' ')"
  done
  quantize w4a4kv4_rtn_had 16
  two="$model,$res/w4a4kv4_rtn_had.quarot.safetensors"
  for i in 1 2 3; do
    for a in 1 0; do
      QUAROT_INT8_ATTENTION=$a $q -t 16 bench -m "$two" --prefill 512 --decode 16 --repeats 3 --json \
        > "$res/bench16_int8attn${a}_run$i.json" 2>> "$res/bench16.log"
      log "bench int8 attention $a run $i rc=$?"
    done
  done
  log "all done"
  exit 0
fi
if [ "${PLAN:-checks}" = hs ]; then
  # The integer HellaSwag rows still missing after PLAN=full ran out of time (W8A8 paper and
  # asymmetric weights, W4A8KV4 paper and best options) and the best W4A8KV4 row's ppl, in
  # four lanes of 4 threads (a 135M model scales poorly past a few threads). First, alone on
  # the machine: the 16-thread profile bench (FP32 vs the RTN W8A8 / W4A4KV4 files), then
  # this CPU's kernel tests beside the GPTQ calibrations.
  for f in "$data"/extra/*.gz; do [ -f "$f" ] && gunzip -kf "$f" && chmod +x "${f%.gz}"; done
  profile_bench
  hellaswag cpu w8a8_rtn_had 4 0 &
  w4a8_paper 6 4 &
  w4a8_best 6 4 &
  quantize w8a8_rtn_had_wasym 4
  if [ -x "$data/extra/test_kernels" ]; then
    "$data/extra/test_kernels" > "$res/test_kernels_xeon.log" 2>&1
    log "test_kernels rc=$? $(grep -E '^\[  (PASSED|FAILED)  \]' "$res/test_kernels_xeon.log" | tr '\n' ' ') $(grep -c '^\[  SKIPPED \]' "$res/test_kernels_xeon.log") skipped"
  fi
  hellaswag cpu w8a8_rtn_had_wasym 4 0
  ppl cpu w4a8kv4_gptq_had_best 4
  wait
  log "all done"
  exit 0
fi
if [ "${PLAN:-checks}" = w4a8best ]; then
  # The next shortest lease: the W4A8KV4 best-options row (HellaSwag, then ppl) on 16 threads.
  w4a8_best 16 16
  ppl cpu w4a8kv4_gptq_had_best 16
  log "all done"
  exit 0
fi
if [ "${PLAN:-checks}" = w4a8bestprof ]; then
  # PLAN=w4a8best, then the 16-thread profile bench (AMX vs FP32) alone on the CPUs, while
  # the GPU runs the GEMM table in alternating rounds (its host thread is one core; it ends
  # long before the profile bench starts).
  cudabench="$(dirname "$0")/../../.device/b/cudabench/cuda_gemm_bench"
  if [ -x "$cudabench" ]; then
    ( nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv > "$res/gpu.txt"
      "$cudabench" "$res/gemm_rounds.json" --paths --w4a8-max-m 100000 --rounds 4 > "$res/gemm_rounds.log" 2>&1
      log "gemm rounds rc=$?" ) &
  fi
  w4a8_best 16 16
  ppl cpu w4a8kv4_gptq_had_best 16
  wait
  profile_bench
  log "all done"
  exit 0
fi
if [ "${PLAN:-checks}" = w4a8one ]; then
  # The shortest lease: the W4A8KV4 paper row's HellaSwag on all 16 threads.
  w4a8_paper 16 16
  log "all done"
  exit 0
fi
if [ "${PLAN:-checks}" = w4a8hs ]; then
  # PLAN=w4a8 reordered for a short lease: the two HellaSwag rows first (two lanes of 8
  # threads), then the best row's ppl, then the 16-thread profile bench (AMX vs FP32) if
  # the lease lasts. `full_table.sh pack` after every call brings back what is done.
  w4a8_paper 8 8 &
  w4a8_best 8 8 &
  wait
  ppl cpu w4a8kv4_gptq_had_best 16
  profile_bench
  log "all done"
  exit 0
fi
if [ "${PLAN:-checks}" = w4a8 ]; then
  # What PLAN=hs left unmeasured when the machine was taken back: the 16-thread profile
  # bench (AMX vs FP32), then the W4A8KV4 paper and best-options rows in two lanes of 8
  # threads (GPTQ, HellaSwag on all 10,042 tasks), then the best row's ppl on 16 threads.
  profile_bench
  w4a8_paper 8 8 &
  w4a8_best 8 8 &
  wait
  ppl cpu w4a8kv4_gptq_had_best 16
  log "all done"
  exit 0
fi
if [ "${PLAN:-checks}" = full ]; then
  # Every HellaSwag task by the integer engine for the paper and best-options rows of
  # W8A8, W4A8KV4 and W4A4KV4, and the W4A8KV4 file scored three ways (integer, C++
  # simulated, PyTorch simulated) so a gap between them belongs to one file.
  quantize w8a8_rtn_had 16
  quantize w4a4kv4_gptq_had 8 &
  quantize w4a16_gptq_had_best 8 &
  wait
  retarget w4a8kv4_gptq_had w4a4kv4_gptq_had --scheme W4A8KV4
  retarget w4a4kv4_gptq_had_best w4a16_gptq_had_best --scheme W4A4KV4 --a-group 64 --a-asym
  retarget w4a8kv4_gptq_had_best w4a16_gptq_had_best --scheme W4A8KV4 --a-group 64 --a-asym
  quantize w8a8_rtn_had_wasym 16
  (  # gpu lane: the PyTorch runtime on the same files
    torch_ppl w4a8kv4_gptq_had
    torch_ppl w8a8_rtn_had_wasym
    torch_ppl w4a8kv4_gptq_had_best
    log "gpu lane done"
  ) &
  ppl cpu w4a8kv4_gptq_had 16
  ppl sim w4a8kv4_gptq_had 16
  hellaswag cpu w4a4kv4_gptq_had 16 0
  hellaswag cpu w4a4kv4_gptq_had_best 16 0
  hellaswag cpu w4a8kv4_gptq_had 16 0
  hellaswag cpu w8a8_rtn_had 16 0
  ppl cpu w8a8_rtn_had_wasym 16
  hellaswag cpu w8a8_rtn_had_wasym 16 0
  ppl cpu w4a8kv4_gptq_had_best 16
  hellaswag cpu w4a8kv4_gptq_had_best 16 0
  wait
  log "all done"
  exit 0
fi
quantize w8a8_rtn_had 16
spec_rtn4="--scheme W4A4KV4 --weights rtn --rotate hadamard"
[ -f "$res/w4a4kv4_rtn_had.quarot.safetensors" ] ||
  $q -q -t 16 quantize -m "$model" $spec_rtn4 -o "$res/w4a4kv4_rtn_had.quarot.safetensors" > /dev/null 2>&1
# Checks first: the CPU kernel tests on this CPU's AVX-512 VNNI / AMX paths (a portable
# test_kernels) beside the CUDA backend's tests and the GPU benchmark (graphs on and off,
# and the previous binary when one travels as $data/extra/base_quarot.gz).
extra=$data/extra
for f in "$extra"/*.gz; do [ -f "$f" ] && gunzip -kf "$f" && chmod +x "${f%.gz}"; done
(
  if [ -x "$extra/test_kernels" ]; then
    log "test_kernels"
    "$extra/test_kernels" > "$res/test_kernels_xeon.log" 2>&1
    log "test_kernels rc=$? $(grep -E '^\[  (PASSED|FAILED)  \]' "$res/test_kernels_xeon.log" | tr '\n' ' ') $(grep -c '^\[  SKIPPED \]' "$res/test_kernels_xeon.log") skipped"
  fi
) &
tests_pid=$!
if [ -x "$extra/test_cuda_backend" ]; then
  "$extra/test_cuda_backend" > "$res/test_cuda_backend.log" 2>&1
  log "test_cuda_backend rc=$? $(grep -E '^\[  (PASSED|FAILED)  \]' "$res/test_cuda_backend.log" | tr '\n' ' ')"
fi
three="$model,$res/w8a8_rtn_had.quarot.safetensors,$res/w4a4kv4_rtn_had.quarot.safetensors"
[ -x "$extra/base_quarot" ] && "$extra/base_quarot" -q -t 2 --device cuda bench -m "$three" --repeats 3 --json \
  > "$res/bench_cuda_base.json" 2> "$res/bench_cuda_base.log"
log "cuda bench base rc=$?"
$q -q -t 2 --device cuda bench -m "$three" --repeats 3 --json > "$res/bench_cuda_graphs.json" 2> "$res/bench_cuda_graphs.log"
log "cuda bench graphs rc=$?"
QUAROT_CUDA_GRAPHS=0 $q -q -t 2 --device cuda bench -m "$three" --repeats 3 --json \
  > "$res/bench_cuda_nographs.json" 2> "$res/bench_cuda_nographs.log"
log "cuda bench no graphs rc=$?"
wait "$tests_pid"
# The CPU bench alone on the machine, profiled op by op (FP32 vs the integer files).
log "bench"
$q -t 16 bench -m "$three" --repeats 2 --profile --json > "$res/bench_16_threads_profile.json" 2> "$res/bench.log"
log "bench rc=$?"

(  # gpu lane
  ppl cuda w8a8_rtn_had 2
  hellaswag cuda w8a8_rtn_had 2 0
  ppl cuda w4a4kv4_gptq_had 2
  ppl cuda w4a8kv4_gptq_had 2
  hellaswag cuda w4a4kv4_gptq_had 2 2000
  hellaswag cuda w4a4kv4_gptq_had 2 0
  hellaswag cuda w4a8kv4_gptq_had 2 0
  log "gpu lane done"
) &

(  # cpu lane
  quantize w4a4kv4_gptq_had 14
  retarget w4a8kv4_gptq_had w4a4kv4_gptq_had --scheme W4A8KV4
  quantize w4a16_gptq_had_best 14
  retarget w4a4kv4_gptq_had_best w4a16_gptq_had_best --scheme W4A4KV4 --a-group 64 --a-asym
  ppl cpu w4a4kv4_gptq_had_best 14
  ppl cpu w4a8kv4_gptq_had 14
  hellaswag cpu w4a4kv4_gptq_had 14 2000
  hellaswag cpu w4a4kv4_gptq_had_best 14 0
  log "cpu lane done"
) &
wait
log "all done"
