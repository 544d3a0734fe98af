"""Independent GPTQ (PyTorch, float64) for one small layer: tests/reference/gptq_layer.json.

Frantar et al. (2022), Algorithm 1 with lazy batches, written from the paper: damp the
Hessian by percdamp * mean(diag H), take the upper Cholesky factor U of H^-1, quantize
column i, and subtract err_i * U[i, i+1:] / U[i, i] from the columns not yet quantized.
The grid is QuaRot's (symmetric: s = max|w| / (2^(b-1) - 1), q in [-2^(b-1), 2^(b-1) - 1];
asymmetric: min/max including 0, zero point round(-min / s)); round half to even (torch.round).
Groups are dynamic: a group's grid comes from the weights as updated when it is reached.
act_order sorts columns by descending diag(H) (stable).

The layer: 512 calibration rows of width 48 with four high-variance directions and
mixed (correlated) columns, as LLM activations have; W [16, 48] ~ N(0, 0.05^2) in FP32.
The fixture holds H (as the C++ side receives it, float64), W, and for each case the
expected codes, the grid, and the proxy loss tr((W - Q) H (W - Q)^T) of GPTQ and RTN.

    $(scripts/setup_reference.sh) tools/reference/gptq_reference.py
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "reference" / "gptq_layer.json"
ROWS, IN, OUT_FEATURES, BITS = 512, 48, 16, 4
PERCDAMP, BLOCK = 0.01, 128  # BLOCK: lazy-batch width without groups; with groups, one group


def grid(w: torch.Tensor, symmetric: bool):
    """(scale, zero) per row of w [rows, n] (float64)."""
    if symmetric:
        qmax = 2 ** (BITS - 1) - 1
        scale = w.abs().amax(dim=1) / qmax
        scale = torch.where(scale == 0, torch.ones_like(scale), scale)
        return scale, torch.full_like(scale, 2 ** (BITS - 1))
    lo = torch.clamp(w.amin(dim=1), max=0.0)
    hi = torch.clamp(w.amax(dim=1), min=0.0)
    scale = (hi - lo) / (2 ** BITS - 1)
    degenerate = scale == 0
    scale = torch.where(degenerate, torch.ones_like(scale), scale)
    zero = torch.round(-lo / scale)
    return scale, zero


def quantize(col: torch.Tensor, scale, zero):
    code = torch.clamp(torch.round(col / scale) + zero, 0, 2 ** BITS - 1)
    return code, scale * (code - zero)


def gptq(w: torch.Tensor, h: torch.Tensor, symmetric: bool, group: int, act_order: bool, block: int):
    rows, n = w.shape
    w = w.clone()
    h = h.clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    perm = torch.argsort(torch.diag(h), descending=True, stable=True) if act_order else torch.arange(n)
    w = w[:, perm]
    h = h[perm][:, perm]
    h += PERCDAMP * torch.mean(torch.diag(h)) * torch.eye(n, dtype=h.dtype)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    codes = torch.zeros(rows, n, dtype=torch.int64)
    gs = group if group > 0 else n
    scales = torch.zeros(rows, n // gs, dtype=torch.float64)
    zeros = torch.zeros_like(scales)
    if group == 0:
        scale, zero = grid(w, symmetric)
    for i1 in range(0, n, block):
        i2 = min(i1 + block, n)
        w1 = w[:, i1:i2].clone()
        err1 = torch.zeros_like(w1)
        hinv1 = hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = int(perm[i1 + i])
            if group > 0 and col % group == 0:
                # Blocks are whole groups, so the group's columns are all in w1, fully updated.
                assert not act_order and i + group <= i2 - i1
                scale, zero = grid(w1[:, i:i + group], symmetric)
            if group == 0 or col % group == 0:
                scales[:, col // gs] = scale
                zeros[:, col // gs] = zero
            code, q = quantize(w1[:, i], scale, zero)
            codes[:, col] = code.long()
            e = (w1[:, i] - q) / hinv1[i, i]
            w1[:, i:] -= e.unsqueeze(1) * hinv1[i, i:].unsqueeze(0)
            err1[:, i] = e
        w[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    return codes, scales, zeros


def dequantize(codes, scales, zeros, group):
    gs = group if group > 0 else codes.shape[1]
    s = scales.repeat_interleave(gs, dim=1)
    z = zeros.repeat_interleave(gs, dim=1)
    return s * (codes.double() - z)


def rtn(w, symmetric, group):
    gs = group if group > 0 else w.shape[1]
    out = torch.zeros_like(w)
    for g in range(0, w.shape[1], gs):
        scale, zero = grid(w[:, g:g + gs], symmetric)
        _, q = quantize(w[:, g:g + gs], scale.unsqueeze(1), zero.unsqueeze(1))
        out[:, g:g + gs] = q
    return out


def loss(w, q, h):
    d = w - q
    return float(torch.einsum("ri,ij,rj->", d, h, d))


def main() -> None:
    g = torch.Generator().manual_seed(20261201)
    z = torch.randn(ROWS, IN, generator=g, dtype=torch.float64)
    z[:, :4] *= 20.0
    mix = torch.randn(IN, IN, generator=g, dtype=torch.float64) / IN ** 0.5
    x = (z + z @ mix.T).float()
    # H = 2 X^T X / N, as quarot's HessianAccumulator defines it (here in float64).
    h = 2.0 * x.double().T @ x.double() / ROWS
    w32 = (0.05 * torch.randn(OUT_FEATURES, IN, generator=g, dtype=torch.float64)).float()
    w = w32.double()
    cases = []
    for symmetric, group, act_order in ((True, 0, False), (False, 16, False), (True, 0, True)):
        block = group if group > 0 else BLOCK
        codes, scales, zeros = gptq(w, h, symmetric, group, act_order, block)
        q = dequantize(codes, scales, zeros, group)
        r = rtn(w, symmetric, group)
        cases.append({"symmetric": symmetric, "group": group, "act_order": act_order, "block": block,
                      "codes": codes.flatten().tolist(), "scales": scales.flatten().tolist(),
                      "zeros": zeros.flatten().tolist(), "loss_gptq": loss(w, q, h), "loss_rtn": loss(w, r, h)})
        print(f"sym {symmetric} group {group} act_order {act_order}: loss gptq {cases[-1]['loss_gptq']:.6g} "
              f"rtn {cases[-1]['loss_rtn']:.6g}")
    fixture = {"what": __doc__.split("\n\n")[0], "torch": torch.__version__, "bits": BITS, "percdamp": PERCDAMP,
               "rows": OUT_FEATURES, "cols": IN,
               "hessian": h.flatten().tolist(), "weight": [float(np.float32(v)) for v in w32.flatten().tolist()],
               "cases": cases}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_name(OUT.name + ".part")
    tmp.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    os.replace(tmp, OUT)
    print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    sys.exit(main())
