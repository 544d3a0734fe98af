#!/usr/bin/env python3
"""Storage bits per weight of the default model's linears (SmolLM2-135M: 30 layers,
hidden 576, 9 q heads / 3 kv heads of 64, ffn 1536) as the quantized file stores them
(docs/file-format.md). CLAQ: packed index stream + FP16 codebooks + a width byte per
column + outliers (16-bit column + FP16 value each, 32-bit CSR row pointers); the
column split of a fractional budget follows quant/claq.h. Integer grid (RTN/GPTQ,
per output row): codes + one FP32 scale per row.  Usage: effective_bits.py B [F]"""
import math, sys

SHAPES = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)]
LAYERS = 30

def widths(b):
    low = math.floor(b)
    high = low if low == b else (4 if low < 4 else low + 1)
    return low, high

def claq(b, f=0.0):
    low, high = widths(b)
    total = weights = 0
    for rows, cols in SHAPES:
        n_high = 0 if high == low else math.floor((b - low) / (high - low) * cols + 0.5)
        bits = [high] * n_high + [low] * (cols - n_high)
        index_bytes = math.ceil(rows / 64) * 8 * sum(bits) + 4
        centroids = sum(2 ** x for x in bits)
        outliers = min(math.floor(f * rows * cols + 0.5), rows * cols)
        total += 8 * index_bytes + 16 * centroids + 8 * cols + (32 * (rows + 1) + 32 * outliers if outliers else 0)
        weights += rows * cols
    return total / weights

def grid(b):
    return sum(rows * cols * b + 32 * rows for rows, cols in SHAPES) / sum(r * c for r, c in SHAPES)

if __name__ == "__main__":
    b = float(sys.argv[1]); f = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    print(f"CLAQ {b} bits, outliers {f}: {claq(b, f):.4f} bits/weight; integer grid {math.floor(b)} bits: {grid(math.floor(b)):.4f}")
