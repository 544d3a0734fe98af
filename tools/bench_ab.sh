#!/usr/bin/env bash
# Two quarot binaries (e.g. a saved copy of the old build and the new one) and the
# llama.cpp baseline, side by side on this machine: ROUNDS rounds, each running
# `quarot bench --repeats REPEATS` (1) with OLD, then with NEW (every model of MODELS, in forked
# children as usual), then tools/bench_llamacpp.sh --repeats 1, so all engines see
# the same machine load. Medians per engine and model, and the ratios NEW/OLD and
# to llama.cpp Q4_0, go to OUT (JSON); the raw per-round JSONs are kept beside it.
#   OLD=build/quarot.base NEW=build/rel/quarot MODELS=a,b tools/bench_ab.sh OUT.json
# Environment: THREADS (2), ROUNDS (3), PREFILL (512), DECODE (128), REPEATS (quarot bench
# repetitions per round, 1; each round's JSON then holds their median), SKIP_LLAMACPP=1,
# LLAMA_TYPES (Q4_0,Q8_0), LLAMACPP_VENV / LLAMACPP_MODELS (see bench_llamacpp.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: OLD=... NEW=... MODELS=... tools/bench_ab.sh OUT.json}
old=${OLD:?OLD binary}; new=${NEW:?NEW binary}; models=${MODELS:?MODELS}
threads=${THREADS:-2}; rounds=${ROUNDS:-3}; prefill=${PREFILL:-512}; decode=${DECODE:-128}; repeats=${REPEATS:-1}
raw="${out%.json}.rounds"
mkdir -p "$raw"
for r in $(seq 1 "$rounds"); do
  for tag in old new; do
    bin=$old; [[ $tag == new ]] && bin=$new
    echo "round $r: $tag ($bin)" >&2
    "$bin" -q -t "$threads" bench -m "$models" --prefill "$prefill" --decode "$decode" --repeats "$repeats" > "$raw/$tag.$r.json"
  done
  if [[ "${SKIP_LLAMACPP:-0}" != 1 ]]; then
    echo "round $r: llama.cpp" >&2
    tools/bench_llamacpp.sh --types "${LLAMA_TYPES:-Q4_0,Q8_0}" --threads "$threads" --prompt "$prefill" --decode "$decode" \
      --repeats 1 > "$raw/llamacpp.$r.json"
  fi
done
python3 - "$raw" "$rounds" "$out" <<'PY'
import json, os, statistics, sys
raw, rounds, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
keys = ("prefill", "decode_after_prompt", "decode_empty")
runs = {}  # (engine, model) -> {key: [tok/s per round]}
meta = {}
for r in range(1, rounds + 1):
    for tag in ("old", "new"):
        j = json.load(open(f"{raw}/{tag}.{r}.json"))
        meta[tag] = {"cpu": j.get("cpu"), "threads": j.get("threads")}
        for m in j["models"]:
            d = runs.setdefault((f"quarot-{tag}", os.path.basename(m["model"]), m["backend"]), {k: [] for k in keys})
            for k in keys: d[k].append(m[k]["tokens_per_s"])
            d.setdefault("bytes_per_token", m["decode_after_prompt"].get("bytes_per_token"))
            d.setdefault("bw", []).append(j.get("measured_read_bandwidth_gbs"))
    p = f"{raw}/llamacpp.{r}.json"
    if os.path.exists(p):
        j = json.load(open(p))
        for m in j.get("models", []):
            d = runs.setdefault(("llama.cpp", m["file"], "llama.cpp"), {k: [] for k in keys})
            for k in keys: d[k].append(m[k]["tokens_per_s"])
            bits = m.get("bits", {})
            if "decode_weight_bytes" in bits and "kv_bytes_per_position" in bits:
                # Its tensors as stored (embedding only when tied to the output) plus its
                # F16 KV cache at the mean position of the decode after the prompt.
                pos = j["prompt_tokens"] + (j["decode_tokens"] + 1) / 2
                d.setdefault("bytes_per_token", bits["decode_weight_bytes"] + bits["kv_bytes_per_position"] * pos)
rows = []
all_bw = [b for (e, _, _), d in runs.items() if e.startswith("quarot") for b in d.get("bw", [])]
for (engine, model, backend), d in runs.items():
    row = {"engine": engine, "model": model, "backend": backend}
    for k in keys:
        row[k + "_tok_s"] = statistics.median(d[k]); row[k + "_all"] = d[k]
    if d.get("bytes_per_token"):
        # The bandwidth quarot bench measured in the same rounds (llama.cpp rows too).
        bw = statistics.median([b for b in (d.get("bw") or all_bw) if b])
        row["bytes_per_token"] = d["bytes_per_token"]; row["measured_read_bandwidth_gbs"] = bw
        row["decode_after_prompt_fraction_of_bandwidth_bound"] = row["decode_after_prompt_tok_s"] * d["bytes_per_token"] / (bw * 1e9)
    rows.append(row)
ref = next((r for r in rows if r["engine"] == "llama.cpp" and "Q4_0" in r["model"]), None)
for r in rows:
    if ref: r["vs_llamacpp_q4_0"] = {k: r[k + "_tok_s"] / ref[k + "_tok_s"] for k in keys}
    if r["engine"] == "quarot-new":
        o = next((x for x in rows if x["engine"] == "quarot-old" and x["model"] == r["model"]), None)
        if o: r["vs_old"] = {k: r[k + "_tok_s"] / o[k + "_tok_s"] for k in keys}
res = {"method": f"{rounds} rounds of: old binary bench (repeats {os.environ.get('REPEATS', '1')}), new binary bench (the same), llama.cpp (repeats 1); medians over rounds",
       "meta": meta, "rows": rows}
with open(dst + ".tmp", "w") as f: json.dump(res, f, indent=2); f.write("\n")
os.replace(dst + ".tmp", dst)
print(f"{'engine':11} {'model':38} {'prefill':>8} {'dec@P':>7} {'dec@0':>7} {'MB/tok':>7} {'bound':>6}  ratios")
for r in rows:
    extra = ""
    if "vs_old" in r: extra += " vs old " + " ".join(f"{v:.2f}" for v in r["vs_old"].values())
    if "vs_llamacpp_q4_0" in r: extra += " vs Q4_0 " + " ".join(f"{v:.2f}" for v in r["vs_llamacpp_q4_0"].values())
    mb = f"{r['bytes_per_token'] / 1e6:7.1f} {100 * r['decode_after_prompt_fraction_of_bandwidth_bound']:5.0f}%" if "bytes_per_token" in r else " " * 14
    print(f"{r['engine']:11} {r['model'][:38]:38} {r['prefill_tok_s']:8.1f} {r['decode_after_prompt_tok_s']:7.1f} {r['decode_empty_tok_s']:7.1f} {mb} {extra}")
PY
