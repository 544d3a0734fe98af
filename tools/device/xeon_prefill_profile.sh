#!/usr/bin/env bash
# Op-by-op prefill profile of FP32 and W4A4KV4 on the GPU machine's Xeon (issue 8's AMX
# target), under several OpenMP / ISA settings, in one lease. The default model (98 MB)
# travels in two halves:
#   call 1  carry .device/x1 (model.part00, quarot.gz, lib/):  tools/device/xeon_prefill_profile.sh stage
#   call 2  carry .device/x2 (model.part01):                  tools/device/xeon_prefill_profile.sh run [SETTINGS...]
# Making the carries (the GGUF from the model cache, a portable quarot build):
#   mkdir -p .device/x1/lib .device/x2 && split -b 50000000 -d -a 2 GGUF .device/x1/model.part &&
#   mv .device/x1/model.part01 .device/x2/ && gzip -c build/portable/quarot > .device/x1/quarot.gz &&
#   cp /lib/x86_64-linux-gnu/{libfmt.so.9,libgomp.so.1,libbz2.so.1.0} .device/x1/lib/
# Call 2 must follow call 1 while the machine is still held (it is given back after ~30 s idle).
# A setting is a space-free list of VAR=VALUE joined by ',' (e.g. QUAROT_ISA=avx512vnni or
# OMP_PROC_BIND=close,OMP_PLACES=cores); "base" runs with nothing extra. Each setting runs
# `quarot -t 16 bench -m FP32,W4A4KV4 --prefill 512 --decode 16 --repeats 3 --profile` with
# GOMP_SPINCOUNT=300000; the JSON files and a summary land in $OUT (the device tool brings them back).
set -uo pipefail
cmd=${1:?usage: xeon_prefill_profile.sh stage|run [SETTINGS...]}
shift
x=/tmp/xeon_profile
case $cmd in
  stage)
    mkdir -p $x && cp -r .device/x1/. $x/ && gunzip -f $x/quarot.gz && chmod +x $x/quarot
    nproc; grep -m1 'model name' /proc/cpuinfo; cat /proc/loadavg
    ;;
  run)
    export LD_LIBRARY_PATH=$x/lib QUAROT_CACHE=$x/cache GOMP_SPINCOUNT=300000
    model=$x/SmolLM2-135M-Instruct.Q4_1.gguf
    [ -f "$model" ] || cat $x/model.part00 .device/x2/model.part01 > "$model"
    sha256sum "$model" | cut -c1-16
    q4=$x/w4a4kv4.quarot.safetensors
    [ -f "$q4" ] || $x/quarot -q -t 16 quantize -m "$model" --scheme W4A4KV4 --weights rtn --rotate hadamard -o "$q4"
    out=${OUT:-/tmp/out}
    mkdir -p "$out"
    for s in "${@:-base}"; do
      envs=()
      [ "$s" != base ] && IFS=',' read -r -a envs <<< "$s"
      tag=$(echo "$s" | tr -c 'A-Za-z0-9\n' '_')
      env "${envs[@]}" $x/quarot -q -t 16 bench -m "$model,$q4" --prefill 512 --decode 16 --repeats 3 --profile > "$out/$tag.json"
      python3 - "$out/$tag.json" "$s" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for m in d["models"]:
    p = m["profile"]["prefill"]
    ops = ", ".join(f'{o["op"]} {o["seconds"]*1e3:.2f}' for o in p["ops"])
    print(f'{sys.argv[2]:>34} {m["model"][-26:]:>26} {m["prefill"]["tokens_per_s"]:8.0f} tok/s  ms: {ops}')
PY
    done
    ;;
esac
