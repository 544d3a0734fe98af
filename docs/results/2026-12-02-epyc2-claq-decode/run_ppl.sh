#!/usr/bin/env bash
# Perplexity old vs new binary (must agree to float rounding): first 2 windows of
# WikiText-2 test. Usage: OLD=bin NEW=bin MODELS="a b" run_ppl.sh OUTDIR
set -euo pipefail
out=${1:?}; mkdir -p "$out"
for m in $MODELS; do
  for tag in old new; do
    bin=$OLD; [ "$tag" = new ] && bin=$NEW
    "$bin" -q -t "${THREADS:-1}" ppl -m "$m" --max-chunks 2 --json > "$out/$(basename "$m" .quarot.safetensors).$tag.json"
  done
done
