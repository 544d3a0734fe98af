#!/usr/bin/env python3
"""What a tensor-core Hadamard would cost in exactness (a model, no GPU).

hadamard_quant_rows is bit-exact to the CPU's FP32 butterflies, and those 12 FADDs per value
(p = 4096) bound it below 70% of a copy (docs/cuda.md, "The instruction floor"). On the
tensor cores, H_4096 x = vec(H_64 X H_64) for the 64 x 64 matrix X of a run (Sylvester:
H_4096 = H_64 (x) H_64): two products with FP16 operands and FP32 accumulation. The first is
exact in its products (the activations are FP16); the second needs its operand, the first's
FP32 result, in FP16: rounded once, or split into hi + lo FP16 parts (two products). This
models both (FP32 sums in steps of 16 products, one mma k-step) against the CPU order on
FP16 rows with outlier channels and counts the int4 codes and scales that differ.

    PYTHON tools/reference/hadamard_tc_precision.py [ROWS (3000)]
(PYTHON: any interpreter with numpy, e.g. the reference venv's, `scripts/setup_reference.sh`
prints it, or tools/bench_llamacpp.sh's build/llamacpp-venv/bin/python; 3000 rows take ~3 s.)
"""
import sys

import numpy as np

P = 4096
f32, f16 = np.float32, np.float16


def fwht_cpu(x):
    """kernels/cpu/fwht.h's order: butterflies h = 1, 2, 4, ... in FP32, then * float(1/sqrt(p))."""
    v = x.astype(f32).copy()
    h = 1
    while h < P:
        v = v.reshape(-1, P // (2 * h), 2, h)
        a, b = v[:, :, 0, :].copy(), v[:, :, 1, :].copy()
        v[:, :, 0, :], v[:, :, 1, :] = a + b, a - b
        v = v.reshape(-1, P)
        h *= 2
    return v * f32(1.0 / np.sqrt(P))


def sylvester(n):
    h = np.array([[1.0]])
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


H64 = sylvester(64).astype(f32)


def mma_f32(a, b):
    """Exact products of FP16-representable operands, FP32 sums per k-step of 16, accumulated in FP32."""
    out = np.zeros((a.shape[0], b.shape[1]), dtype=f32)
    for k0 in range(0, a.shape[1], 16):
        step = (a[:, k0:k0 + 16].astype(np.float64) @ b[k0:k0 + 16].astype(np.float64)).astype(f32)
        out = (out + step).astype(f32)
    return out


def fwht_tensor_cores(x, split):
    xs = x.astype(f32).reshape(-1, 64, 64)
    out = np.empty_like(xs)
    for n in range(xs.shape[0]):
        y = mma_f32(xs[n], H64)
        if split:
            hi = y.astype(f16).astype(f32)
            lo = (y - hi).astype(f16).astype(f32)
            out[n] = (mma_f32(H64, hi) + mma_f32(H64, lo)).astype(f32)
        else:
            out[n] = mma_f32(H64, y.astype(f16).astype(f32))
    return out.reshape(-1, P) * f32(1.0 / 64)


def quantize_int4(y):
    s = (np.abs(y).max(axis=1) / f32(7)).astype(f32)
    return np.clip(np.rint((y / s[:, None]).astype(f32)), -8, 7), s


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rng = np.random.default_rng(20261205)
    x = rng.standard_normal((rows, P)).astype(f32)
    x[:, rng.choice(P, 16, replace=False)] *= 20.0  # outlier channels, as activations have
    x = x.astype(f16).astype(f32)
    ref = fwht_cpu(x)
    q_ref, s_ref = quantize_int4(ref)
    print(f"{rows} rows of {P} FP16 values, int4 codes, against the CPU's FP32 butterflies")
    for split in (False, True):
        y = fwht_tensor_cores(x, split)
        q, s = quantize_int4(y)
        differ = q != q_ref
        name = "second product on hi + lo FP16 parts" if split else "second product on one FP16 rounding"
        print(f"{name}: codes differing {differ.sum()} of {q.size} ({100 * differ.mean():.4f}%, at most "
              f"{np.abs(q - q_ref).max():.0f} step), scales differing in their bits {(s != s_ref).sum()} of {rows} "
              f"(largest relative {np.max(np.abs(s - s_ref) / s_ref):.1e}), largest value error "
              f"{np.abs(y - ref).max() / np.abs(ref).max():.1e} of max|y|")


if __name__ == "__main__":
    main()
