#!/usr/bin/env bash
# Decode cost in CPU seconds per token, old vs new binary, alternating: on a loaded
# machine wall-clock rates swing 2-3x, CPU time much less. Per round, binary and
# model: `quarot generate` (THREADS threads, default 1, greedy) of 1 and of N+1 tokens after the same
# prompt; (CPU(N+1) - CPU(1)) / N is the decode cost per token (load, prefill and
# the repack at load cancel out; divided by the tokens actually generated). Usage: OLD=bin NEW=bin MODELS="a b c" run_cpu_decode.sh OUT.json
set -euo pipefail
out=${1:?usage: OLD=... NEW=... MODELS=... run_cpu_decode.sh OUT.json}
export OMP_WAIT_POLICY=PASSIVE
python3 - "$out" <<'PY'
import json, os, resource, statistics, subprocess, sys
out = sys.argv[1]
bins = {"old": os.environ["OLD"], "new": os.environ["NEW"]}
models = os.environ["MODELS"].split()
n = int(os.environ.get("DECODE", "128"))
rounds = int(os.environ.get("ROUNDS", "3"))
prompt = "The history of the city begins in the early middle ages, when"
def cpu_of(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = json.loads(r.stdout)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), res
rows = {}
for rnd in range(1, rounds + 1):
    for tag, b in bins.items():
        for m in models:
            base = [b, "-q", "-t", os.environ.get("THREADS", "1"), "generate", "-m", m, "-p", prompt, "--json", "-n"]
            c1, r1 = cpu_of(base + ["1"])
            c2, r2 = cpu_of(base + [str(n + 1)])
            d = rows.setdefault((os.path.basename(m), tag), {"ms_per_token": [], "text": r2.get("text")})
            steps = r2["generated_tokens"] - r1["generated_tokens"]  # fewer than n if the model ended the text
            d["ms_per_token"].append(1000 * (c2 - c1) / steps)
            print(f"round {rnd} {tag} {os.path.basename(m)}: {1000 * (c2 - c1) / steps:.2f} ms CPU per decoded token", file=sys.stderr, flush=True)
res = []
for (m, tag), d in sorted(rows.items()):
    res.append({"model": m, "binary": tag, "cpu_ms_per_token": {"median": statistics.median(d["ms_per_token"]), "all": d["ms_per_token"]},
                "text": d["text"]})
json.dump({"decode_tokens": n, "threads": int(os.environ.get("THREADS", "1")), "omp_wait_policy": "PASSIVE", "prompt": prompt, "rows": res}, open(out, "w"), indent=1)
PY
