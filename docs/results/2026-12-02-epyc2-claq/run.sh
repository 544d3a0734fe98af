#!/usr/bin/env bash
# One row of the CLAQ table: quantize, then WikiText-2 test perplexity on a slice.
#   run.sh NAME METHOD ROTATE BITS [extra quantize args...]
# BITS: an integer (--scheme W<b>A16) or a fractional CLAQ budget (--w-bits).
# Env: QUAROT (binary), QUAROT_THREADS (1), CALIB_WINDOWS (4), CALIB_SEQLEN (512), CHUNKS (1 window of 2048), OUT (this folder), TMPDIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
QUAROT=${QUAROT:-build/rel/quarot}
CALIB_WINDOWS=${CALIB_WINDOWS:-4}
CALIB_SEQLEN=${CALIB_SEQLEN:-512}
CHUNKS=${CHUNKS:-1}
OUT=${OUT:-$here}
# One thread: on a machine shared with other jobs, two OpenMP threads wait on each other at every barrier.
export QUAROT_THREADS=${QUAROT_THREADS:-1}
name=$1 method=$2 rotate=$3 bits=$4
shift 4
if [[ $bits == *.* ]]; then bitargs=(--w-bits "$bits"); else bitargs=(--scheme "W${bits}A16"); fi
file=${TMPDIR:-/tmp}/claq_table_$name.quarot.safetensors
QUAROT_NO_PROGRESS=1 "$QUAROT" quantize --weights "$method" --rotate "$rotate" "${bitargs[@]}" \
  --calib-windows "$CALIB_WINDOWS" --calib-seqlen "$CALIB_SEQLEN" "$@" -o "$file" --json > "$OUT/$name.quantize.json"
QUAROT_NO_PROGRESS=1 "$QUAROT" ppl -m "$file" --max-chunks "$CHUNKS" --json > "$OUT/$name.ppl.json"
rm -f "$file"
echo "$name $(grep '"ppl"' "$OUT/$name.ppl.json")"
