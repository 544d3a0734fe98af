#!/usr/bin/env bash
# One row of the CLAQ table: quantize, then WikiText-2 test perplexity on a slice.
#   run.sh NAME METHOD ROTATE BITS [extra quantize args...]
# BITS: an integer (--scheme W<b>A16) or a fractional CLAQ budget (--w-bits).
# Env: QUAROT (binary), CALIB_WINDOWS (4), CHUNKS (8), OUT (this folder), TMPDIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
QUAROT=${QUAROT:-build/rel/quarot}
CALIB_WINDOWS=${CALIB_WINDOWS:-4}
CHUNKS=${CHUNKS:-8}
OUT=${OUT:-$here}
name=$1 method=$2 rotate=$3 bits=$4
shift 4
if [[ $bits == *.* ]]; then bitargs=(--w-bits "$bits"); else bitargs=(--scheme "W${bits}A16"); fi
file=${TMPDIR:-/tmp}/claq_table_$name.quarot.safetensors
QUAROT_NO_PROGRESS=1 "$QUAROT" quantize --weights "$method" --rotate "$rotate" "${bitargs[@]}" \
  --calib-windows "$CALIB_WINDOWS" --calib-seqlen 2048 "$@" -o "$file" --json > "$OUT/$name.quantize.json"
QUAROT_NO_PROGRESS=1 "$QUAROT" ppl -m "$file" --max-chunks "$CHUNKS" --json > "$OUT/$name.ppl.json"
rm -f "$file"
echo "$name $(grep '"ppl"' "$OUT/$name.ppl.json")"
