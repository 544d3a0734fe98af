#!/usr/bin/env bash
# Run the original QuaRot reference (spcl/QuaRot fake_quant/, via run_reference.py) on the
# GPU machine: 7 WikiText-2 rows (all test windows, seqlen 2048), one Python process each.
#
#   tools/reference/spcl_quarot/run_device.sh MODEL_DIR OUT_DIR [TEST_TEXT] [CALIB_TEXT]
#
#   MODEL_DIR   HF checkpoint of SmolLM2-135M-Instruct (config.json, model.safetensors,
#               tokenizer.json), e.g. made from the GGUF with transformers (see README.md)
#   OUT_DIR     gets <row>.json per row, run.log (everything), summary.tsv
#   TEST_TEXT   default .device/a/wikitext-2-raw-v1.test.txt
#   CALIB_TEXT  default .device/a/wikitext-2-v1.valid.tokenized.txt (validation split)
#
# Environment: PYTHON (default python3), REF_DIR (default .ref/spcl_quarot/fake_quant, must
# travel with the run: it is git-ignored), ROWS (space-separated subset of the row names
# below), MAX_WINDOWS / NSAMPLES / MAX_LAYERS (smoke tests only: first N test windows /
# N calibration windows / first N decoder layers), DEVICE (default cuda).
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
if [ $# -lt 2 ]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 2
fi
model_dir=$1
out=$2
test_text=${3:-$repo/.device/a/wikitext-2-raw-v1.test.txt}
calib_text=${4:-$repo/.device/a/wikitext-2-v1.valid.tokenized.txt}
python=${PYTHON:-python3}
ref_dir=${REF_DIR:-$repo/.ref/spcl_quarot/fake_quant}
device=${DEVICE:-cuda}
nsamples=${NSAMPLES:-128}

export TQDM_MININTERVAL=${TQDM_MININTERVAL:-10}  # fewer progress-bar lines in the log
mkdir -p "$out"
log=$out/run.log
: > "$log"
say() { echo "$*" | tee -a "$log"; }

for f in "$model_dir/config.json" "$test_text" "$calib_text" "$ref_dir/main.py"; do
  [ -e "$f" ] || { say "missing: $f"; exit 1; }
done

# The paper recipe (QuaRot Sec. 5 / fake_quant README): weights per-channel symmetric with
# MSE clipping search (--w_clip); activations per-token symmetric, clip 0.9; K and V
# asymmetric, groups of head_dim (64), clip 0.95; lm_head stays 16-bit (their main.py).
# GPTQ: their defaults (128 x 2048 calibration windows, percdamp 0.01, no act-order).
A4="--a_bits 4 --a_clip_ratio 0.9"
KV4="--k_bits 4 --v_bits 4 --k_asym --v_asym --k_groupsize 64 --v_groupsize 64 --k_clip_ratio 0.95 --v_clip_ratio 0.95"
declare -A ROW_ARGS=(
  [fp]=""
  [w16a16_had]="--rotate"
  [w8a8_rtn_had]="--rotate --w_bits 8 --w_rtn --w_clip --a_bits 8 --a_clip_ratio 0.9"
  [w4a4kv4_rtn_had]="--rotate --w_bits 4 --w_rtn --w_clip $A4 $KV4"
  [w4a4kv4_gptq_had]="--rotate --w_bits 4 --w_clip --nsamples $nsamples $A4 $KV4"
  [w4a16_gptq_had]="--rotate --w_bits 4 --w_clip --nsamples $nsamples"
  [w4a4kv4_rtn_none]="--w_bits 4 --w_rtn --w_clip $A4 $KV4"
  # optional diagnostic (not in the default order): rotation invariance without their two
  # non-invariant steps (embedding mean-centering, RMSN eps 1e-6); see README.md
  [w16a16_had_diag_pure]="--rotate"
)
declare -A ROW_HARNESS=(
  [w16a16_had_diag_pure]="--diag-no-embed-center --diag-rmsn-eps 1e-5"
)
order="fp w16a16_had w8a8_rtn_had w4a4kv4_rtn_had w4a4kv4_gptq_had w4a16_gptq_had w4a4kv4_rtn_none"
rows=${ROWS:-$order}

extra=()
[ -n "${MAX_WINDOWS:-}" ] && extra+=(--max-windows "$MAX_WINDOWS")
[ -n "${MAX_LAYERS:-}" ] && extra+=(--max-layers "$MAX_LAYERS")

say "== spcl/QuaRot reference rows: $(date -u +%FT%TZ)"
say "model $model_dir; test $test_text; calib $calib_text; ref $ref_dir; out $out"
{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; } 2>&1 | tee -a "$log"
"$python" -c "import sys, torch, transformers; print('python', sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" 2>&1 | tee -a "$log"
(cd "$ref_dir" && sha256sum ./*.py) >> "$log" 2>&1

printf 'row\tppl\twindows\tseconds\n' > "$out/summary.tsv"
failed=0
total_start=$(date +%s)
for row in $rows; do
  if [ -z "${ROW_ARGS[$row]+x}" ]; then say "unknown row: $row"; failed=1; continue; fi
  say ""
  say "== [$row] $(date -u +%T) their args: ${ROW_ARGS[$row]}"
  start=$(date +%s)
  rm -f "$out/$row.json"
  # shellcheck disable=SC2086
  "$python" "$here/run_reference.py" --ref-dir "$ref_dir" --model-dir "$model_dir" \
      --test-text "$test_text" --calib-text "$calib_text" --device "$device" \
      --row "$row" --out-json "$out/$row.json" "${extra[@]}" ${ROW_HARNESS[$row]:-} -- ${ROW_ARGS[$row]} 2>&1 \
    | stdbuf -oL tr '\r' '\n' | grep --line-buffered -v '^\s*$' | tee -a "$log" \
    | grep --line-buffered -E '^\[spcl_quarot\]|PPL|Error|error|Traceback|^Layer|GPTQ'
  rc=${PIPESTATUS[0]}
  secs=$(( $(date +%s) - start ))
  if [ "$rc" -ne 0 ] || [ ! -s "$out/$row.json" ]; then
    say "== [$row] FAILED (rc $rc) after ${secs}s"
    failed=1
    continue
  fi
  "$python" -c "import json,sys; d=json.load(open(sys.argv[1])); print(f\"{d['row']}\t{d['ppl']:.6f}\t{d['windows']}\t{d['seconds']}\")" \
      "$out/$row.json" | tee -a "$out/summary.tsv" | tee -a "$log"
done
say ""
say "== done in $(( $(date +%s) - total_start ))s; summary ($out/summary.tsv):"
"$python" -c "import sys; rows=[l.rstrip('\n').split('\t') for l in open(sys.argv[1])]; w=[max(len(r[i]) for r in rows) for i in range(len(rows[0]))]; [print('  '.join(c.ljust(w[i]) for i, c in enumerate(r))) for r in rows]" "$out/summary.tsv" | tee -a "$log"
exit $failed
