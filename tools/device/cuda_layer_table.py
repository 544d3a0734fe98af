#!/usr/bin/env python3
"""Markdown tables from cuda_layer_bench's JSON (docs/cuda.md and the results README quote them).

    tools/device/cuda_layer_table.py docs/results/<run>/cuda_layer_bench.json
"""
import json
import sys


def stage_table(title, fp16, w4a4):
    print(f"\n{title} (ms, median of the stage-timed runs)\n")
    print("| FP16 stage | ms | W4A4 stage | ms |")
    print("|---|---|---|---|")
    f, q = list(fp16.items()), list(w4a4.items())
    for i in range(max(len(f), len(q))):
        a = f"{f[i][0]} | {f[i][1]:.3f}" if i < len(f) else " | "
        b = f"{q[i][0]} | {q[i][1]:.3f}" if i < len(q) else " | "
        print(f"| {a} | {b} |")
    print(f"| sum | {sum(fp16.values()):.3f} | sum | {sum(w4a4.values()):.3f} |")


def main(path):
    d = json.load(open(path))
    c = d["config"]
    print(f"GPU: {d['gpu']}; hidden {c['hidden']}, heads {c['heads']}/{c['kv_heads']}, head_dim {c['head_dim']}, "
          f"intermediate {c['intermediate']}\n")
    print(f"Prefill, sequence {c['seq']} (median of {c['reps']} whole-layer runs):\n")
    print("| batch | tokens | FP16 ms | W4A4 ms | W4A4 speedup over FP16 |")
    print("|---|---|---|---|---|")
    for p in d["prefill"]:
        print(f"| {p['batch']} | {p['tokens']} | {p['fp16_ms']:.3f} | {p['w4a4_ms']:.3f} | {p['speedup']:.2f}x |")
    de = d["decode"]
    print(f"\nDecode step, batch {de['batch']}, context {de['context']} (one layer):\n")
    print("| | FP16 ms | W4A4KV4 ms | speedup |")
    print("|---|---|---|---|")
    print(f"| stream launches | {de['fp16_ms']:.4f} | {de['w4a4_ms']:.4f} | {de['speedup']:.2f}x |")
    if de["graph"]:
        print(f"| CUDA graph | {de['fp16_graph_ms']:.4f} | {de['w4a4_graph_ms']:.4f} | {de['graph_speedup']:.2f}x |")
    m = d["memory"]
    print(f"\nMemory, weights + KV at batch {c['decode_batch']}, context {c['context']}:\n")
    print("| | FP16 | W4A4KV4 | ratio |")
    print("|---|---|---|---|")
    print(f"| one layer, allocated MB | {m['fp16_layer_bytes'] / 1e6:.1f} | {m['w4a4kv4_layer_bytes'] / 1e6:.1f} | "
          f"{m['fp16_layer_bytes'] / m['w4a4kv4_layer_bytes']:.2f}x |")
    print(f"| one layer, cudaMemGetInfo MB | {m['fp16_layer_measured_bytes'] / 1e6:.1f} | "
          f"{m['w4a4kv4_layer_measured_bytes'] / 1e6:.1f} | "
          f"{m['fp16_layer_measured_bytes'] / m['w4a4kv4_layer_measured_bytes']:.2f}x |")
    print(f"| model: {m['layers']} layers + embeddings and lm_head (FP16), GB | {m['fp16_model_gb']:.2f} | "
          f"{m['w4a4kv4_model_gb']:.2f} | {m['ratio']:.2f}x |")
    for p in d["prefill"]:
        stage_table(f"Prefill stages, batch {p['batch']}", p["fp16_stages_ms"], p["w4a4_stages_ms"])
    stage_table("Decode stages", de["fp16_stages_ms"], de["w4a4_stages_ms"])


if __name__ == "__main__":
    main(sys.argv[1])
