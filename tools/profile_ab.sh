#!/usr/bin/env bash
# Alternating profiled runs of several quarot binaries on this machine, each run placed by
# its own processes' thread round trip (on a VM whose two vCPUs move between core
# complexes: "one" < 120 ns, "two" > 200 ns, both measured before and after each
# repetition; runs that changed state are left out), then medians per model, state and
# binary: decode tok/s after the prompt and from empty, and us per token of the main ops.
#   tools/profile_ab.sh OUT_DIR BIN_A BIN_B [...]
# Environment: ROUNDS (30), MODELS (comma separated; default the CLAQ 2.12 W2A8KV4 and
# W4A4KV4 files in build/bench-models), THREADS (2), PREFILL (512), DECODE (128).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: tools/profile_ab.sh OUT_DIR BIN_A BIN_B [...]}
shift
(($# >= 1)) || { echo "name at least one binary" >&2; exit 1; }
models=${MODELS:-build/bench-models/claq2.12_had_a8kv4.quarot.safetensors,build/bench-models/w4a4kv4_rtn_had.quarot.safetensors}
mkdir -p "$out"
for r in $(seq 1 "${ROUNDS:-30}"); do
  for b in "$@"; do
    tag=$(basename "$b")
    GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-300000} "$b" -q -t "${THREADS:-2}" bench -m "$models" --prefill "${PREFILL:-512}" \
      --decode "${DECODE:-128}" --repeats 1 --profile > "$out/${tag}_$r.json"
  done
done
python3 - "$out" "$@" <<'PY' | tee "$out/summary.txt"
import collections, glob, json, os, statistics as st, sys
out, bins = sys.argv[1], [os.path.basename(b) for b in sys.argv[2:]]
keep = ["lm_head", "attention", "gate_proj", "down_proj", "q_proj", "o_proj"]
rows = collections.defaultdict(list)
for b in bins:
    for f in glob.glob(f"{out}/{b}_*.json"):
        for m in json.load(open(f))["models"]:
            rt = m["thread_round_trip_ns_all"]
            state = "two" if min(rt) > 200 else "one" if max(rt) < 120 else None
            if state is None:
                continue
            ops = {}
            for o in m["profile"]["decode_after_prompt"]["ops"]:
                name = o["op"].split(" ")[-1].split("+")[0]
                ops[name] = o["us_per_token"]
            rows[(os.path.basename(m["model"]), state, b)].append(
                (m["decode_after_prompt"]["tokens_per_s"], m["decode_empty"]["tokens_per_s"], ops))
print("model | complexes | binary | runs | median decode tok/s @prompt, @0 | median us per token")
for k in sorted(rows):
    v = rows[k]
    ops = " ".join(f"{o}={st.median(x[2].get(o, 0) for x in v):.0f}" for o in keep)
    print(f"{k[0]} | {k[1]} | {k[2]} | {len(v)} | {st.median(x[0] for x in v):.1f} {st.median(x[1] for x in v):.1f} | {ops}")
PY
