#!/usr/bin/env bash
# session 30: the default model's FP32 / W4A4KV4 prefill on the GPU machine's Xeon, 16 threads,
# with the portable build of c1b62d9 (the session's final CPU code); model in three parts.
set -uo pipefail
x=/tmp/xeon_profile
cat $x/model.part00 $x/model.part01 .device/x3/model.part02 > $x/SmolLM2-135M-Instruct.Q4_1.gguf
cd /tmp && mkdir -p x3 && cd - > /dev/null
sha256sum $x/SmolLM2-135M-Instruct.Q4_1.gguf | cut -c1-16
nproc; grep -m1 'model name' /proc/cpuinfo; lscpu | grep -o -E "amx_int8|avx512_vnni" | sort -u | tr '\n' ' '; echo; cat /proc/loadavg
mkdir -p $x/cache
export LD_LIBRARY_PATH=$x/lib QUAROT_CACHE=$x/cache GOMP_SPINCOUNT=300000
q4=$x/w4a4kv4.quarot.safetensors
time $x/quarot -q -t 16 quantize -m $x/SmolLM2-135M-Instruct.Q4_1.gguf --scheme W4A4KV4 --weights rtn --rotate hadamard -o $q4
mkdir -p $OUT
for r in 1 2 3; do
  $x/quarot -q -t 16 bench -m $x/SmolLM2-135M-Instruct.Q4_1.gguf,$q4 --prefill 512 --decode 16 --repeats 5 > $OUT/bench_$r.json
  python3 - $OUT/bench_$r.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ms = d["models"]
f, w = ms[0]["prefill"]["tokens_per_s"], ms[1]["prefill"]["tokens_per_s"]
print(f"{d['cpu'][:60]} threads {d['threads']}: FP32 {f:.0f} tok/s, W4A4KV4 {w:.0f} tok/s, {w/f:.2f}x; backend {ms[1]['backend']}")
PY
done
