#!/usr/bin/env bash
# Third lease (called by full_table.sh ref): the original QuaRot code on the same model and
# text (tools/reference/spcl_quarot, GPU), and our GPTQ calibrated through the quantized
# model (--calib-quantized; quantize on the CPU cores, scored by the PyTorch runtime).
set -uo pipefail
q=${1:?usage: reference_and_calib.sh QUAROT GGUF OUTDIR}
gguf=${2:?}
out=${3:?}
source "$(dirname "$0")/lib.sh"
(
  export_hf_checkpoint "$gguf" \
    && "$repo/tools/reference/spcl_quarot/run_device.sh" /tmp/smollm2-hf "$out/spcl" "$test_text" "$calib" \
    && NSAMPLES=16 ROWS="w4a4kv4_gptq_had w4a16_gptq_had" \
       "$repo/tools/reference/spcl_quarot/run_device.sh" /tmp/smollm2-hf "$out/spcl_calib16" "$test_text" "$calib"
) > "$out/spcl.log" 2>&1 &

row w4a4kv4_gptq_had_cq 8 --scheme W4A4KV4 --weights gptq --calib-windows 16 --calib-quantized &
row w4a4kv4_gptq_had_best_cq 8 --scheme W4A4KV4 --weights gptq --calib-windows 16 --w-group 64 --w-asym \
  --a-group 64 --a-asym --calib-quantized &
wait
echo "reference and calib-quantized rows done"
