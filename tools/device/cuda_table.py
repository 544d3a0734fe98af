#!/usr/bin/env python3
"""Markdown tables from cuda_gemm_bench's JSON (docs/cuda.md quotes them).

    tools/device/cuda_table.py docs/results/<run>/cuda_gemm_bench.json
"""
import json
import sys


def main(path):
    d = json.load(open(path))
    print(f"GPU: {d['gpu']} (sm_{d['sm']}, {d['sms']} SMs); copy 1 GiB: {d['copy_1GiB']['GBps']} GB/s\n")
    # "W4A4 auto" is timed first after the cuBLAS runs; "same path later" times the
    # same kernel again after the other paths (when the benchmark ran with --paths).
    print("| K x N | M | cuBLAS FP16 us (TOPS) | cuBLASLt INT8 us (TOPS) | W4A4 auto us (TOPS) | "
          "same path later us | W4A8 us | W4A4 / FP16 | W4A4 / INT8 | path |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for g in d["gemm"]:
        us, tops = g["us"], g["tops"]
        later = g.get("w4a4_paths_us", {}).get(g["w4a4_path"])
        later_s = f"{later:.1f} ({2e-6 * g['m'] * g['n'] * g['k'] / later:.0f})" if later else "-"
        print(f"| {g['k']} x {g['n']} | {g['m']} | {us['cublas_fp16']:.1f} ({tops['cublas_fp16']:.0f}) | "
              f"{us['cublaslt_int8']:.1f} ({tops['cublaslt_int8']:.0f}) | {us['w4a4']:.1f} ({tops['w4a4']:.0f}) | "
              f"{later_s} | {us['w4a8']:.1f} | {g['w4a4_vs_fp16']:.2f}x | {g['w4a4_vs_int8']:.2f}x | "
              f"{g['w4a4_path']} |")
    if d.get("hadamard_quant"):
        print("\n| M | K | p | ours us | ours GB/s | copy us | copy GB/s | ratio |")
        print("|---|---|---|---|---|---|---|---|")
        for h in d["hadamard_quant"]:
            print(f"| {h['m']} | {h['k']} | {h['p']} | {h['us']:.1f} | {h['GBps']} | {h['copy_us']:.1f} | "
                  f"{h['copy_GBps']} | {h['bw_ratio']:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1])
