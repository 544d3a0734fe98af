#!/usr/bin/env bash
# quarot and llama.cpp side by side on this machine (issue 8, "Performance"): one
# `quarot bench` run over the FP model and its W8A8 / W4A8KV4 / W4A4KV4 files
# (repetitions interleaved), then tools/bench_llamacpp.sh over F32 / F16 / Q8_0 / Q4_0
# GGUFs of the same model, same prompt and decode lengths, same threads; both JSONs
# and a short table are combined into docs/results/<date>-<cpu>/bench_side_by_side.json.
#
#   tools/bench_side_by_side.sh [OUTDIR]
# Environment: QUAROT (binary, default build/release/quarot), THREADS (default 2),
# REPEATS (default 3), PREFILL (512), DECODE (128), MODEL (FP model, default
# smollm2-135m), SCHEMES (default "W8A8 W4A8KV4 W4A4KV4"), QUANT_DIR (where the
# quantized files are made once with RTN + Hadamard: the scheme, not the quantizer,
# sets the speed; default build/bench-models), EXTRA_MODELS (more files for
# quarot bench, comma separated; e.g. CLAQ files, which `quarot quantize --weights claq`
# makes), LLAMA_TYPES (GGUF types for llama.cpp, default F32,F16,Q8_0,Q4_0; Q2_K, Q3_K,
# Q3_K_S, Q4_K too), SKIP_LLAMACPP=1 to leave llama.cpp out, LLAMACPP_VENV /
# LLAMACPP_MODELS (see bench_llamacpp.sh).
# Every row gets bytes read per decoded token and the fraction of the bandwidth bound
# (quarot bench's measured read bandwidth, the same for both engines), and quarot's rows
# the fraction of the bound at the rate of a read cycling over their own bytes per token
# (ReadBandwidthProbe::measure_gbs(region): on a CPU whose last-level cache keeps much of
# a decode step's bytes, e.g. the 2-vCPU Xeon's 480 MiB L3, above the DRAM rate); llama.cpp's bytes
# are its tensors as stored (the embedding table counted only when it is also the
# output matrix) plus its F16 KV cache at the mean decode position.
set -euo pipefail
cd "$(dirname "$0")/.."
q=${QUAROT:-build/release/quarot}
threads=${THREADS:-2}
repeats=${REPEATS:-3}
prefill=${PREFILL:-512}
decode=${DECODE:-128}
model=${MODEL:-smollm2-135m}
schemes=${SCHEMES:-"W8A8 W4A8KV4 W4A4KV4"}
qdir=${QUANT_DIR:-build/bench-models}
[[ -x "$q" ]] || { echo "quarot binary $q not found (scripts/build.sh builds it; QUAROT= names another)" >&2; exit 1; }

cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
slug=$(echo "$cpu" | tr 'A-Z' 'a-z' | sed 's/([^)]*)//g; s/[^a-z0-9]\+/-/g; s/^-//; s/-$//' | cut -c1-40)
out=${1:-docs/results/$(date -u +%Y-%m-%d)-${slug}-${threads}t}
mkdir -p "$out" "$qdir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

models=$model
for s in $schemes; do
  f="$qdir/$(echo "$s" | tr 'A-Z' 'a-z')_rtn_had.quarot.safetensors"
  if [[ ! -f "$f" ]]; then
    echo "quantizing $model to $s -> $f" >&2
    "$q" -q -t "$threads" quantize -m "$model" --scheme "$s" --weights rtn --rotate hadamard -o "$f" >&2
  fi
  models="$models,$f"
done
if [[ -n "${EXTRA_MODELS:-}" ]]; then models="$models,$EXTRA_MODELS"; fi

# One OpenMP wait setting for both engines, chosen once before either runs (the rule of
# src/common/wait_policy.h): bounded spinning on an idle machine, passive waiting otherwise.
if [[ -z "${OMP_WAIT_POLICY:-}" && -z "${GOMP_SPINCOUNT:-}" ]]; then
  if awk '{exit !($1 < 0.5)}' /proc/loadavg && [[ $(nproc) -gt 1 ]]; then
    export GOMP_SPINCOUNT=300000
  else
    export OMP_WAIT_POLICY=PASSIVE
    echo "warning: load average $(cut -d' ' -f1 /proc/loadavg) >= 0.5 (a build just now?): both engines wait passively," \
      "which slows decode by a third or more on an idle machine; wait for the load to fall or set GOMP_SPINCOUNT=300000" >&2
  fi
fi
echo "quarot bench: $models (OpenMP wait: ${OMP_WAIT_POLICY:+OMP_WAIT_POLICY=$OMP_WAIT_POLICY}${GOMP_SPINCOUNT:+GOMP_SPINCOUNT=$GOMP_SPINCOUNT})" >&2
"$q" -q -t "$threads" bench -m "$models" --prefill "$prefill" --decode "$decode" --repeats "$repeats" \
  > "$tmp/quarot.json"
if [[ "${SKIP_LLAMACPP:-0}" != 1 ]]; then
  echo "llama.cpp" >&2
  tools/bench_llamacpp.sh --types "${LLAMA_TYPES:-F32,F16,Q8_0,Q4_0}" --threads "$threads" --prompt "$prefill" --decode "$decode" --repeats "$repeats" \
    > "$tmp/llamacpp.json"
else
  echo '{}' > "$tmp/llamacpp.json"
fi

python3 - "$tmp/quarot.json" "$tmp/llamacpp.json" "$out/bench_side_by_side.json" "$cpu" <<'PY'
import json, os, sys, datetime
qj, lj, dst, cpu = sys.argv[1:5]
quarot = json.load(open(qj))
llama = json.load(open(lj))
rows = []
bw = quarot["measured_read_bandwidth_gbs"] * 1e9
for m in quarot["models"]:
    a, e = m["decode_after_prompt"], m["decode_empty"]
    rows.append({"engine": "quarot", "model": os.path.basename(m["model"]), "backend": m["backend"],
                 "prefill_tok_s": m["prefill"]["tokens_per_s"],
                 "decode_after_prompt_tok_s": a["tokens_per_s"],
                 "decode_empty_tok_s": e["tokens_per_s"],
                 "file_mb": m["file_bytes"] / 1e6, "peak_rss_mb": m["peak_rss_bytes"] / 1e6,
                 "bytes_per_token_after_prompt": a["bytes_per_token"], "bytes_per_token_empty": e["bytes_per_token"],
                 "bound_fraction_after_prompt": a["fraction_of_bandwidth_bound"],
                 "bound_fraction_empty": e["fraction_of_bandwidth_bound"],
                 "footprint_bound_fraction_after_prompt": a.get("fraction_of_footprint_bound"),
                 "footprint_bound_fraction_empty": e.get("fraction_of_footprint_bound")})
for m in llama.get("models", []):
    row = {"engine": "llama.cpp", "model": m["file"], "backend": llama.get("system_info", ""),
           "prefill_tok_s": m["prefill"]["tokens_per_s"],
           "decode_after_prompt_tok_s": m["decode_after_prompt"]["tokens_per_s"],
           "decode_empty_tok_s": m["decode_empty"]["tokens_per_s"],
           "file_mb": m["file_bytes"] / 1e6, "peak_rss_mb": None}
    bits = m.get("bits", {})
    if "decode_weight_bytes" in bits and "kv_bytes_per_position" in bits:
        n = llama["decode_tokens"]
        for key, ctx0 in (("after_prompt", llama["prompt_tokens"]), ("empty", 0)):
            b = bits["decode_weight_bytes"] + bits["kv_bytes_per_position"] * (ctx0 + (n + 1) / 2)
            row["bytes_per_token_" + key] = b
            row["bound_fraction_" + key] = row[f"decode_{key}_tok_s"] * b / bw
    rows.append(row)
# Ratios of every row to llama.cpp Q4_0 (the issue's reference), where it ran.
ref = next((r for r in rows if r["engine"] == "llama.cpp" and "Q4_0" in r["model"]), None)
if ref:
    for r in rows:
        r["vs_llamacpp_q4_0"] = {k: r[k] / ref[k] for k in ("prefill_tok_s", "decode_after_prompt_tok_s", "decode_empty_tok_s")}
combined = {
    "cpu": cpu,
    "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "order": "quarot bench (its models interleaved), then llama.cpp (its models interleaved), one after the other",
    "summary": rows,
    "quarot": quarot,
    "llama_cpp": llama,
}
tmp = dst + ".tmp"
with open(tmp, "w") as f:
    json.dump(combined, f, indent=2)
    f.write("\n")
os.replace(tmp, dst)
w = max(len(r["model"]) for r in rows)
print(f"read bandwidth {bw / 1e9:.2f} GB/s (quarot bench's measurement); bound = at that rate, "
      "fp-bound = at the rate of a read cycling over the row's own bytes per token (what the caches keep between tokens)")
print(f"{'engine':10} {'model':{w}} {'prefill':>9} {'dec@P':>8} {'dec@0':>8} {'file MB':>8} {'MB/tok@P':>9} {'bound@P':>8} {'bound@0':>8}"
      f" {'fp-bound@P':>10} {'fp-bound@0':>10}")
pct = lambda v: f"{100 * v:9.0f}%" if v is not None else f"{'-':>10}"
for r in rows:
    extra = ""
    if "bytes_per_token_after_prompt" in r:
        extra = (f" {r['bytes_per_token_after_prompt'] / 1e6:9.1f} {100 * r['bound_fraction_after_prompt']:7.0f}%"
                 f" {100 * r['bound_fraction_empty']:7.0f}%"
                 f" {pct(r.get('footprint_bound_fraction_after_prompt'))} {pct(r.get('footprint_bound_fraction_empty'))}")
    print(f"{r['engine']:10} {r['model']:{w}} {r['prefill_tok_s']:9.1f} {r['decode_after_prompt_tok_s']:8.1f} "
          f"{r['decode_empty_tok_s']:8.1f} {r['file_mb']:8.1f}{extra}")
print(f"written: {dst}")
PY
