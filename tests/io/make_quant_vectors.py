#!/usr/bin/env python3
"""Writes data/ggml_quant_vectors.txt: random ggml blocks of every supported type
and their dequantization by the reference `gguf` Python package (gguf.quants), for
test_ggml_quants_reference.cpp. Regenerate with:
  /root/.cache/quarot/venv/bin/python tests/io/make_quant_vectors.py
Format, one tensor per line: <TYPE> <n_elements> <hex of raw block bytes> <hex of float32 values, little-endian>
"""
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

# Byte offsets of fp16 scale fields within each block (set to finite random values
# so random bytes never make a NaN/Inf scale).
BLOCKS = {
    "Q4_0": (T.Q4_0, 32, 18, [0]),
    "Q4_1": (T.Q4_1, 32, 20, [0, 2]),
    "Q5_0": (T.Q5_0, 32, 22, [0]),
    "Q5_1": (T.Q5_1, 32, 24, [0, 2]),
    "Q8_0": (T.Q8_0, 32, 34, [0]),
    "Q4_K": (T.Q4_K, 256, 144, [0, 2]),
    "Q5_K": (T.Q5_K, 256, 176, [0, 2]),
    "Q6_K": (T.Q6_K, 256, 210, [208]),
}


def main():
    rng = np.random.default_rng(1234)
    out = []
    for name, (qtype, block_elems, block_bytes, scale_offsets) in BLOCKS.items():
        nblocks = 3
        raw = rng.integers(0, 256, size=nblocks * block_bytes, dtype=np.uint8)
        for b in range(nblocks):
            for off in scale_offsets:
                scale = np.float16(rng.uniform(-2.0, 2.0))
                raw[b * block_bytes + off: b * block_bytes + off + 2] = np.frombuffer(scale.tobytes(), np.uint8)
        values = quants.dequantize(raw, qtype).astype(np.float32).reshape(-1)
        assert values.size == nblocks * block_elems
        out.append(f"{name} {values.size} {raw.tobytes().hex()} {values.astype('<f4').tobytes().hex()}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "ggml_quant_vectors.txt")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print(path)


if __name__ == "__main__":
    main()
