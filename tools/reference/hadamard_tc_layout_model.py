#!/usr/bin/env python3
"""Checks the fragment layout of src/kernels/cuda/hadamard_quant_tc.cu without a GPU.

Follows every lane of one warp through the kernel's index arithmetic: the swizzled
cp.async placement of a row, ldmatrix.x4.trans addresses and the fragments it hands out,
the m16n8k16 A/B/C fragment conventions of the PTX ISA, the C -> A reuse between the two
products, the +-H_16 constant fragments with their H_R / H_64 block signs, and the byte
positions of the staged codes (packed, and the even/odd layout's byte per code). Exact
integer arithmetic stands in for the FP16/FP32 rounding, so Z must equal H_p x exactly.
Pure Python (no numpy).
  python3 tools/reference/hadamard_tc_layout_model.py   -> "ok" or the first mismatch
"""
import random
import sys


def popc(v):
    return bin(v).count("1")


def hadamard(i, j):
    return -1 if popc(i & j) & 1 else 1


def h16(r, c):
    return hadamard(r, c)


def staged_chunk(v):
    line = v >> 6
    return line * 128 + ((((v >> 3) & 7) ^ (line & 7)) << 4)


def place_row(x):
    """Shared memory as a dict byte address -> half value (prefetch's placement), the
    view's tail past the row zero (units of 1024 values)."""
    mem = {}
    units = (len(x) + 1023) // 1024
    for c in range(units * 128):
        base = staged_chunk(8 * c)
        for i in range(8):
            assert base + 2 * i not in mem, "two chunks share an address"
            mem[base + 2 * i] = x[8 * c + i] if 8 * c < len(x) else 0
    return mem


def ldmatrix_x4_trans(mem, addr_of_lane):
    """regs[lane][i] = (lo, hi) halves: matrix i, element [2t, 2t+1][g] (transposed)."""
    rows = [[mem[addr_of_lane[l] + 2 * e] for e in range(8)] for l in range(32)]
    regs = []
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        regs.append([(rows[8 * i + 2 * t][g], rows[8 * i + 2 * t + 1][g]) for i in range(4)])
    return regs


def mma(c, a, b0, b1):
    """c[lane][4] += A(16x16) B(16x8) with the PTX m16n8k16 fragment layouts."""
    A = [[0] * 16 for _ in range(16)]
    B = [[0] * 8 for _ in range(16)]
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        for reg, (r, k) in enumerate([(g, 2 * t), (g + 8, 2 * t), (g, 2 * t + 8), (g + 8, 2 * t + 8)]):
            A[r][k], A[r][k + 1] = a[lane][reg]
        B[2 * t][g], B[2 * t + 1][g] = b0[lane]
        B[2 * t + 8][g], B[2 * t + 9][g] = b1[lane]
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        for i, (r, n) in enumerate([(g, 2 * t), (g, 2 * t + 1), (g + 8, 2 * t), (g + 8, 2 * t + 1)]):
            c[lane][i] += sum(A[r][k] * B[k][n] for k in range(16))


def neg(pair, sign):
    return (pair[0] * sign, pair[1] * sign)


def run_unit(x, p, unit):
    C = 64 if p >= 1024 else p // 16
    R = p // C
    stripes = R // 16
    tile, stripe = unit // stripes, unit % stripes
    mem = place_row(x)
    tb = tile * R * 128
    ha, hb = [], []
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        ha.append([(h16(g, 2 * t), h16(g, 2 * t + 1)), (h16(g + 8, 2 * t), h16(g + 8, 2 * t + 1)),
                   (h16(g, 2 * t + 8), h16(g, 2 * t + 9)), (h16(g + 8, 2 * t + 8), h16(g + 8, 2 * t + 9))])
        hb.append([[(h16(2 * t, 8 * h + g), h16(2 * t + 1, 8 * h + g)),
                    (h16(2 * t + 8, 8 * h + g), h16(2 * t + 9, 8 * h + g))] for h in range(2)])
    loff = []
    for lane in range(32):
        lrow = ((lane >> 3) & 1) * 8 + (lane & 7)
        loff.append([lrow * 128 + (((2 * m + (lane >> 4)) ^ (lane & 7)) << 4) for m in range(4)])
    acc = [[[0] * 4 for _ in range(32)] for _ in range(8)]
    if C == 64:
        for kb in range(stripes):
            sign = -1 if popc(stripe & kb) & 1 else 1
            a = [[neg(ha[l][i], sign) for i in range(4)] for l in range(32)]
            for m in range(4):
                b = ldmatrix_x4_trans(mem, [tb + kb * 16 * 128 + loff[l][m] for l in range(32)])
                mma(acc[2 * m], a, [b[l][0] for l in range(32)], [b[l][1] for l in range(32)])
                mma(acc[2 * m + 1], a, [b[l][2] for l in range(32)], [b[l][3] for l in range(32)])
    else:
        for m in range(4):
            addrs = []
            for lane in range(32):
                lrow = ((lane >> 3) & 1) * 8 + (lane & 7)
                q = 2 * m + (lane >> 4)
                blk = unit * (64 // C) + (8 * q) // C
                addrs.append(staged_chunk(blk * p + lrow * C + (8 * q) % C))
            b = ldmatrix_x4_trans(mem, addrs)
            mma(acc[2 * m], ha, [b[l][0] for l in range(32)], [b[l][1] for l in range(32)])
            mma(acc[2 * m + 1], ha, [b[l][2] for l in range(32)], [b[l][3] for l in range(32)])
    # C -> A: k-block kb, register r from n-tile 2kb + (r >> 1), elements (r & 1) * 2, +1.
    afr = [[[(acc[2 * kb + (r >> 1)][l][(r & 1) * 2], acc[2 * kb + (r >> 1)][l][(r & 1) * 2 + 1]) for r in range(4)]
            for l in range(32)] for kb in range(4)]
    z = [[[0] * 4 for _ in range(32)] for _ in range(8)]
    tiles, ks = C // 8, C // 16
    for n in range(8):
        bb, nl = n // tiles, n % tiles
        for kl in range(ks):
            sign = -1 if popc(kl & (nl >> 1)) & 1 else 1
            b0 = [neg(hb[l][nl & 1][0], sign) for l in range(32)]
            b1 = [neg(hb[l][nl & 1][1], sign) for l in range(32)]
            mma(z[n], afr[bb * ks + kl], b0, b1)
    # Staged bytes (int4): row i (g, g + 8) of n-tile n holds the unit's values
    # bb p + C i + 8 nl + 2t, + 1, at byte (C g + 2t) / 2 + (bb p + 8 nl) / 2 (+ 4 C for g + 8).
    out = {}
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        for n in range(8):
            bb, nl = n // tiles, n % tiles
            at = (g * C + 2 * t) // 2 + (bb * p + 8 * nl) // 2
            for byte, (i0, i1) in ((at, (0, 1)), (at + 4 * C, (2, 3))):
                assert byte not in out, "two lanes stage one byte"
                out[byte] = (z[n][lane][i0], z[n][lane][i1])
    assert sorted(out) == list(range(512)), "staging does not cover the unit"
    # The unit's bytes are values unit * 1024 + 2 * byte, + 1 of the row.
    return {unit * 1024 + 2 * b + k: out[b][k] for b in out for k in range(2)}


def even_odd_pos(v):
    return (v & ~31) + ((v & 31) >> 1)


def check_even_odd():
    """The kernel's even/odd store: lane part + constant part, their positions added."""
    for p in (256, 512, 1024, 2048, 4096, 8192):
        C = 64 if p >= 1024 else p // 16
        tiles = C // 8
        seen = set()
        for lane in range(32):
            g, t = lane >> 2, lane & 3
            for n in range(8):
                bb, nl = n // tiles, n % tiles
                for i in (g, g + 8):
                    v = bb * p + i * C + 8 * nl + 2 * t
                    at = even_odd_pos(g * C + 2 * t) + even_odd_pos(bb * p + 8 * nl) + (8 * C if i == g + 8 else 0)
                    for k, pos in ((0, at), (1, at + 16)):
                        want = even_odd_pos(v + k) + ((v + k) & 1) * 16
                        if pos != want:
                            print(f"even/odd position p={p} value {v + k}: {pos} != {want}")
                            return False
                        seen.add(pos)
        if sorted(seen) != list(range(1024)):
            print(f"even/odd stores do not cover the unit at p={p}")
            return False
    print("even/odd positions: ok")
    return True


def main():
    rng = random.Random(1)
    if not check_even_odd():
        return 1
    for p, cols in ((256, 2816), (512, 1536), (1024, 2048), (2048, 2048), (4096, 4096), (8192, 8192)):
        x = [rng.randint(-50, 50) for _ in range(cols)]
        units = (cols + 1023) // 1024
        check_units = sorted({0, units - 1, rng.randrange(units)})
        for unit in check_units:
            got = run_unit(x, p, unit)
            for idx, v in got.items():
                if idx >= cols:  # the view's zero tail: not stored
                    assert v == 0, f"nonzero code past the row's end: p={p} index={idx}"
                    continue
                blk, i = divmod(idx, p)
                want = sum(hadamard(i, j) * x[blk * p + j] for j in range(p))
                if v != want:
                    print(f"mismatch p={p} unit={unit} index={idx}: {v} != {want}")
                    return 1
        print(f"p={p} cols={cols} units {check_units}: ok")
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
