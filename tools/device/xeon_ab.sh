#!/usr/bin/env bash
# Two portable quarot builds side by side on the GPU machine's Xeon (AMX): the kernel
# tests on every path, the activation-quantization microbenchmarks, and the default
# model's FP32 / W4A4KV4 prefill in alternating pairs, in one lease. The model (98 MB)
# travels in two halves, as in xeon_prefill_profile.sh:
#   call 1  carry .device/x1:  tools/device/xeon_ab.sh stage
#   call 2  carry .device/x2:  tools/device/xeon_ab.sh run [PAIRS]
# Making the carries (OLD = the build before the change, NEW = after; portable builds; the
# binaries may be .gz or .xz, and the model halves uneven when the tree leaves less room):
#   mkdir -p .device/x1/lib .device/x2 && split -b 50000000 -d -a 2 GGUF .device/x1/model.part &&
#   mv .device/x1/model.part01 .device/x2/ &&
#   for v in old new; do gzip -c $BUILD_v/quarot > .device/x1/quarot_$v.gz;
#     gzip -c $BUILD_v/bench/bench_int_gemm > .device/x2/bench_int_gemm_$v.gz; done &&
#   gzip -c NEW/tests/test_kernels > .device/x2/test_kernels.gz &&
#   cp /lib/x86_64-linux-gnu/{libfmt.so.9,libgomp.so.1,libbz2.so.1.0,libbenchmark.so.1debian} .device/x1/lib/
# If the tree leaves too little room, a third carry .device/x3 (model.part01a, the middle of the
# model, and e.g. test_kernels.xz) goes in between: call 1b  carry .device/x3:  tools/device/xeon_ab.sh stage2
# TESTS= overrides the kernel tests' gtest filter; PROFILES=N adds N alternating profiled prefills
# per binary (the quantizer's share of layer time, old against new). Call 2 must follow call 1 while the machine is still held (~30 s idle release).
# $OUT gets old_N.json / new_N.json (quarot bench), profile_new.json, kernels_*.txt, tests_*.txt,
# and all of them in all.tar.gz.
set -uo pipefail
cmd=${1:?usage: xeon_ab.sh stage|run [PAIRS]}
x=/tmp/xeon_ab
# Decompress $1 (.gz or .xz) to $2; Python's lzma where the host has no xz.
unpack() {
  case $1 in
    *.gz) gunzip -c "$1" > "$2" ;;
    *.xz) if command -v xz > /dev/null; then xz -dc "$1" > "$2"; else
            python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi ;;
  esac
}
case $cmd in
  stage)
    mkdir -p $x && cp -r .device/x1/. $x/
    for f in $x/*.gz $x/*.xz; do [ -f "$f" ] || continue; b=${f%.gz}; unpack "$f" "${b%.xz}" && rm "$f"; done
    chmod +x $x/quarot_*
    nproc; grep -m1 'model name' /proc/cpuinfo; lscpu | grep -E '^(Thread|Core|Socket)'; cat /proc/loadavg
    ;;
  stage2)
    # A third carry (.device/x3) when the tree leaves too little room: more model bytes
    # (model.part01a, between part00 and x2's part01) and binaries, unpacked here.
    mkdir -p $x && cp -r .device/x3/. $x/
    for f in $x/*.gz $x/*.xz; do [ -f "$f" ] || continue; b=${f%.gz}; unpack "$f" "${b%.xz}" && rm "$f"; chmod +x "${b%.xz}"; done
    ls $x
    ;;
  run)
    pairs=${2:-4}
    tests=${TESTS:-'*ActQuant*:*Fwht*:QuantKvStorage*:RopeRotateQk*:CpuBackendInteger.*:KvStore*:*IntGemm*'}
    export LD_LIBRARY_PATH=$x/lib QUAROT_CACHE=$x/cache GOMP_SPINCOUNT=300000
    out=${OUT:-/tmp/out}; mkdir -p "$out"
    for f in .device/x2/*.gz .device/x2/*.xz; do
      [ -f "$f" ] || continue
      b=$(basename "$f"); b=${b%.gz}; b=${b%.xz}
      unpack "$f" $x/$b
      chmod +x $x/$b
    done
    model=$x/SmolLM2-135M-Instruct.Q4_1.gguf
    [ -f "$model" ] || cat $x/model.part00 $([ -f $x/model.part01a ] && echo $x/model.part01a) .device/x2/model.part01 > "$model"
    q4=$x/w4a4kv4.quarot.safetensors
    [ -f "$q4" ] || $x/quarot_new -q -t 16 quantize -m "$model" --scheme W4A4KV4 --weights rtn --rotate hadamard -o "$q4"
    for isa in amx avx512vnni avx2; do
      QUAROT_ISA=$isa $x/test_kernels --gtest_brief=1 --gtest_filter="$tests" > "$out/tests_$isa.txt" 2>&1
      echo "tests $isa: rc=$? $(grep -E 'PASSED|FAILED' "$out/tests_$isa.txt" | tr '\n' ' ')"
    done
    for v in old new; do
      OMP_NUM_THREADS=16 $x/bench_int_gemm_$v --benchmark_filter=quantize_activations_smollm2 \
        --benchmark_repetitions=5 --benchmark_report_aggregates_only=true > "$out/kernels_$v.txt" 2>&1
      grep median "$out/kernels_$v.txt" | awk -v v=$v '{print v, $1, $2, $3}'
    done
    for i in $(seq 1 "$pairs"); do
      for v in old new; do
        $x/quarot_$v -q -t 16 bench -m "$model,$q4" --prefill 512 --decode 16 --repeats 5 --json > "$out/${v}_$i.json"
        python3 - "$out/${v}_$i.json" "$v $i" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r = [m["prefill"]["tokens_per_s"] for m in d["models"]]
print(f"{sys.argv[2]}: FP32 {r[0]:.0f}  W4A4KV4 {r[1]:.0f} tok/s  ratio {r[1] / r[0]:.2f}")
PY
      done
    done
    $x/quarot_new -q -t 16 bench -m "$model,$q4" --prefill 512 --decode 16 --repeats 3 --profile --json > "$out/profile_new.json"
    python3 - "$out/profile_new.json" <<'PY'
import json, sys
for m in json.load(open(sys.argv[1]))["models"]:
    p = m["profile"]["prefill"]
    print(m["model"][-26:], ", ".join(f'{o["op"]} {o["seconds"]*1e3:.2f}' for o in p["ops"]))
PY
    # PROFILES=N: N more profiled prefills per binary, alternating, for the quantizer's share.
    for i in $(seq 1 "${PROFILES:-0}"); do
      for v in old new; do
        $x/quarot_$v -q -t 16 bench -m "$q4" --prefill 512 --decode 16 --repeats 1 --profile --json > "$out/profile_${v}_$i.json"
        python3 - "$out/profile_${v}_$i.json" "$v $i" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["models"][0]["profile"]["prefill"]["online_quantization"]
print(f'{sys.argv[2]}: activation quantize {p["activation_quantize_seconds"] * 1e3:.2f} ms of {p["layer_op_seconds"] * 1e3:.2f} ms = {100 * p["activation_quantize_share"]:.1f}%')
PY
      done
    done
    # The device tool brings back a handful of files: everything in one archive too.
    tar -czf /tmp/xeon_ab_all.tar.gz -C "$out" . && mv /tmp/xeon_ab_all.tar.gz "$out/all.tar.gz"
    ;;
esac
