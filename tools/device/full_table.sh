#!/usr/bin/env bash
# The whole accuracy table (all WikiText-2 windows, full HellaSwag) on the GPU machine:
# `quarot quantize` on its CPU cores writes every row's file, the independent PyTorch
# runtime (tools/reference/quarot_runtime.py) scores the files on the GPU, and the C++
# runtime re-scores a few rows on 10 windows as a cross-check. The model (98 MB) is over
# one call's 64 MiB carry limit, so it travels in two halves over two calls:
#
#   call 1  carry .device/a (data, model.part00, wheels):  tools/device/full_table.sh stage
#   call 2  carry .device/b (quarot, libs, model.part01):   tools/device/full_table.sh start 540
#   call 3+ (no carry, within 30 s of the last):            tools/device/full_table.sh wait 560
#   last                                                   tools/device/full_table.sh pack
# `claq` runs tools/device/claq_rows.sh (issue 10's CLAQ / GPTQ / RTN table, then issue 8's rows).
# `rows` runs tools/device/int_rows.sh (this binary needs -DQUAROT_CUDA=ON: GPU and CPU lanes);
# `int` instead of `start` runs tools/device/int_table.sh (the C++ integer engine vs the
# simulated runtime, all windows; full HellaSwag rescored); `seeds` instead of `start` runs tools/device/seed_trials.sh (best-of-N rotation seeds),
# `ref` runs tools/device/reference_and_calib.sh (spcl/QuaRot itself; --calib-quantized);
# `calib` runs tools/device/calib_size.sh (128 calibration windows; the reference at 16).
# Carry .ref/spcl_quarot for `ref` and `calib` in EVERY call of that lease: a call that
# does not carry an ignored path deletes it on the machine.
#
# Jobs run under setsid so they outlive one call while the machine stays warm.
set -uo pipefail
cmd=${1:?usage: full_table.sh stage|start|int|wait|pack [SECONDS]}
budget=${2:-540}
stage=/tmp/stage
res=/tmp/res
q=/tmp/q
repo=$(pwd)
export QUAROT_CACHE=/tmp/cache QUAROT_DATA=$stage
# A CUDA-enabled quarot (the `rows` lanes) finds cudart/cuBLAS where the machine keeps them.
cuda_libs=$(ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib 2>/dev/null | tr '\n' ':')
cublas_wheel=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null || true)
export LD_LIBRARY_PATH="$q/lib:${cuda_libs}${cublas_wheel}"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1

wait_for_jobs() {
  local t0=$SECONDS
  while [ $((SECONDS - t0)) -lt "$budget" ]; do
    if ! pgrep -f "accuracy_table.sh|int_table.sh|int_rows.sh|claq_rows.sh|crosscheck_rows|run_reference|seed_trials.sh|reference_and_calib.sh|calib_size.sh" > /dev/null; then
      echo "all jobs done"
      return 0
    fi
    sleep 15
    [ -f $res/int_table.log ] && tail -n 2 $res/int_table.log
    [ -f $res/int_rows.log ] && tail -n 2 $res/int_rows.log
    [ -f $res/claq_rows.log ] && tail -n 2 $res/claq_rows.log
    echo "$(date -u +%T) $(ls $res/*.ppl.json 2>/dev/null | wc -l) ppl rows, $(ls $res/*.hellaswag.json 2>/dev/null | wc -l) hellaswag rows done; running: $(pgrep -fa 'quarot_runtime.py|/tmp/q/quarot' | grep -v pgrep | awk '{print $NF}' | sort | uniq -c | tr '\n' ' ')"
  done
  echo "still running after ${budget}s"
}

case $cmd in
  stage)
    mkdir -p $stage && cp -r .device/a/. $stage/
    nproc; grep -m1 'model name' /proc/cpuinfo; nvidia-smi -L
    python3 -c 'import torch, transformers, tokenizers, safetensors; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())'
    ;;
  start | seeds | ref | calib | int | rows | claq)
    mkdir -p $QUAROT_CACHE/models/smollm2-135m $q $res
    cat $stage/model.part00 .device/b/model.part01 > $QUAROT_CACHE/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf
    sha256sum $QUAROT_CACHE/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf
    cp .device/b/quarot $q/ && cp -r .device/b/lib $q/
    $q/quarot --version 2>&1 | head -1
    if [ "$cmd" = ref ]; then
      setsid nohup bash "$repo/tools/device/reference_and_calib.sh" $q/quarot \
        $QUAROT_CACHE/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf $res > $res/ref.log 2>&1 < /dev/null &
      wait_for_jobs
      exit 0
    fi
    if [ "$cmd" = calib ]; then
      setsid nohup bash "$repo/tools/device/calib_size.sh" $q/quarot \
        $QUAROT_CACHE/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf $res > $res/calib.log 2>&1 < /dev/null &
      wait_for_jobs
      exit 0
    fi
    if [ "$cmd" = rows ]; then
      setsid nohup bash "$repo/tools/device/int_rows.sh" $q/quarot \
        $QUAROT_CACHE/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf $res > $res/rows.log 2>&1 < /dev/null &
      wait_for_jobs
      exit 0
    fi
    if [ "$cmd" = claq ]; then
      setsid nohup bash "$repo/tools/device/claq_rows.sh" $q/quarot \
        $QUAROT_CACHE/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf $res > $res/claq.log 2>&1 < /dev/null &
      wait_for_jobs
      exit 0
    fi
    if [ "$cmd" = int ]; then
      setsid nohup bash "$repo/tools/device/int_table.sh" $q/quarot \
        $QUAROT_CACHE/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf $res > $res/int.log 2>&1 < /dev/null &
      wait_for_jobs
      exit 0
    fi
    if [ "$cmd" = seeds ]; then
      setsid nohup bash "$repo/tools/device/seed_trials.sh" $q/quarot $res > $res/seeds.log 2>&1 < /dev/null &
      wait_for_jobs
      exit 0
    fi
    # The table: GPTQ sources first so their calibrations start at once.
    ROWS="w4a4kv4_gptq_had w4a16_gptq_had_best fp w16a16 w8a8_rtn_had w8a8_rtn_none w8a8_rtn_had_wasym w6a6_rtn_had \
w4a16_rtn_had k4v4_had w4a4kv4_rtn_had w4a4kv4_rtn_none w4a16_gptq_had w4a8kv4_gptq_had w4a4kv4_gptq_had_best"
    setsid nohup env QUAROT=$q/quarot EVALUATOR=torch PYTHON=python3 CHUNKS=0 HS_LIMIT=0 \
      CALIB_WINDOWS=${CALIB_WINDOWS:-16} JOBS=4 THREADS=4 ROWS="$ROWS" \
      HS_ROWS="fp w8a8_rtn_had w4a4kv4_gptq_had w4a4kv4_gptq_had_best" \
      bash "$repo/scripts/accuracy_table.sh" $res > $res/table.log 2>&1 < /dev/null &
    # The C++ runtime on the same files, first 10 windows, once the table is done.
    setsid nohup bash -c "while [ ! -f $res/table.md ]; do sleep 10; done; \
      for r in fp w8a8_rtn_had w4a4kv4_rtn_had w4a4kv4_gptq_had w4a4kv4_gptq_had_best; do \
        $q/quarot -q -t 16 ppl -m $res/\$r.quarot.safetensors --text $stage/wikitext-2-raw-v1.test.txt --max-chunks 10 \
          --json > $res/\$r.cpp10.ppl.json 2> $res/\$r.cpp10.log; done # crosscheck_rows" > /dev/null 2>&1 < /dev/null &
    wait_for_jobs
    ;;
  wait)
    wait_for_jobs
    ;;
  pack)
    tail -30 $res/table.log $res/int_table.log $res/int_rows.log 2>/dev/null
    cat $res/claq_rows.log 2>/dev/null
    (cd $res && tar czf "$OUT/res.tar.gz" --exclude='*.safetensors' .)
    ls -la "$OUT"
    ;;
  *) echo "full_table.sh: unknown command $cmd" >&2; exit 2 ;;
esac
