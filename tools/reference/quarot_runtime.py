"""An independent PyTorch implementation of quarot's runtime, for quantized files.

`quarot quantize` writes a .quarot.safetensors file (docs/file-format.md). This
script reads that file with the `safetensors` package (not our C++ reader),
dequantizes the packed integer weights from the documented encoding, and runs the
documented simulated arithmetic (docs/quarot.md, kernels/cpu/fake_quant.h) in
PyTorch FP32: RMSNorm -> [online rotation -> activation fake-quant] -> linear,
RoPE, the per-head Q/K rotation after RoPE, K/V cache fake-quant (IntactKV
optional), GQA causal attention, SwiGLU. Two uses:

  * a cross-check of the C++ runtime written from the specification alone: on the
    same file and windows both must give the same perplexity (quantize-then-round
    decisions can flip on FP32 summation-order noise, so a quantized model agrees
    to ~1e-3 relative, an FP one to ~1e-5);
  * full-length evaluations on a GPU: all 148 WikiText-2 windows and thousands of
    HellaSwag tasks in seconds instead of hours on a 2-core machine.

    python tools/reference/quarot_runtime.py ppl  FILE [--max-chunks N] [--device cuda] [--json OUT]
    python tools/reference/quarot_runtime.py hellaswag FILE [--limit N] [--device cuda] [--json OUT]

The WikiText-2 protocol is the GPTQ/QuaRot one (tools/reference/perplexity.py):
the whole text tokenized in one call, numel // seqlen windows, each scored on its
own, ppl = exp(mean of the per-window mean NLLs). HellaSwag follows
src/eval/hellaswag.cpp (lm-eval's acc / acc_norm, normalization by the ending's
length in characters, without the " " delimiter).
"""
import argparse
import bz2
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent))
from json_out import write_json_atomic  # noqa: E402

DATA = Path(os.environ.get("QUAROT_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


# ---------------------------------------------------------------------------
# File reading and dequantization (docs/file-format.md)
# ---------------------------------------------------------------------------

def dequantize(qweight: torch.Tensor, scales: torch.Tensor, zeros, info: dict) -> torch.Tensor:
    bits, group, symmetric = info["bits"], info["group"], info["symmetric"]
    rows, cols = info["shape"]
    q = qweight.to(torch.int32)
    packing = info.get("packing", "nibbles-low-first" if bits <= 4 else "bytes")
    if packing == "bits-low-first":
        # A little-endian bit stream per row: code i at bits [i*bits, i*bits + bits).
        stream = ((q.unsqueeze(-1) >> torch.arange(8)) & 1).reshape(rows, -1)[:, : cols * bits]
        codes = (stream.reshape(rows, cols, bits) << torch.arange(bits)).sum(-1)
    elif bits <= 4:
        low, high = q & 0xF, q >> 4
        codes = torch.stack([low, high], dim=-1).reshape(rows, -1)[:, :cols]
    else:
        codes = q[:, :cols]
    codes = codes.to(torch.float64)
    g = cols if group == 0 else group
    zero = float(2 ** (bits - 1)) if symmetric else zeros.to(torch.float64).repeat_interleave(g, dim=1)
    scale = scales.to(torch.float64).repeat_interleave(g, dim=1)
    return (scale * (codes - zero)).to(torch.float32)


def dequantize_codebook(f, name: str, info: dict) -> torch.Tensor:
    """A codebook linear (CLAQ; docs/file-format.md "A codebook linear"), decoded from the spec alone."""
    rows, cols = info["shape"]
    stripe = info.get("stripe_rows", 64)
    b = f.get_tensor(name + ".cb_bits").to(torch.int64)
    centroids = f.get_tensor(name + ".cb_centroids").to(torch.float64)
    data = f.get_tensor(name + ".cb_indices").to(torch.uint8)
    if b.numel() != cols or int(b.min()) < 1 or int(b.max()) > 8:
        sys.exit(f"{name}: cb_bits must hold {cols} widths in 1..8")
    # Position k holds column order[k]: columns sorted by (width, column).
    order = sorted(range(cols), key=lambda c: (int(b[c]), c))
    order_t = torch.tensor(order, dtype=torch.int64)
    width = b[order_t]
    table_start = torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.int64), 1 << width]), 0)[:-1]
    if int(table_start[-1] + (1 << width[-1])) != centroids.numel():
        sys.exit(f"{name}: cb_centroids holds {centroids.numel()} values, the widths need {int(table_start[-1] + (1 << width[-1]))}")
    stripes = (rows + stripe - 1) // stripe
    stripe_bytes = stripe // 8 * int(width.sum())
    if data.numel() != stripes * stripe_bytes + 4:
        sys.exit(f"{name}: cb_indices holds {data.numel()} bytes, expected {stripes * stripe_bytes + 4}")
    data = data[: stripes * stripe_bytes].view(stripes, stripe_bytes)
    bit_weights = 1 << torch.arange(8, dtype=torch.int64)
    w = torch.empty(rows, cols, dtype=torch.float64)
    k0, byte0 = 0, 0
    while k0 < cols:  # one run of same-width positions at a time
        wd = int(width[k0])
        k1 = k0
        while k1 < cols and int(width[k1]) == wd:
            k1 += 1
        n = k1 - k0
        block = data[:, byte0: byte0 + n * stripe // 8 * wd].to(torch.int64)
        bits = ((block.unsqueeze(-1) >> torch.arange(8)) & 1).reshape(stripes, n, stripe, wd)  # bit i of byte i//8
        idx = (bits * bit_weights[:wd]).sum(-1)  # [stripes, n, stripe]
        idx = idx.permute(0, 2, 1).reshape(stripes * stripe, n)[:rows]
        w[:, order_t[k0:k1]] = centroids[table_start[k0:k1].unsqueeze(0) + idx]
        byte0 += n * stripe // 8 * wd
        k0 = k1
    if info.get("outliers", 0) > 0:
        row_ptr = f.get_tensor(name + ".cb_outlier_row_ptr").to(torch.int64)
        ocols = f.get_tensor(name + ".cb_outlier_cols").to(torch.int64)
        ovals = f.get_tensor(name + ".cb_outlier_values").to(torch.float64)
        orows = torch.repeat_interleave(torch.arange(rows), row_ptr[1:] - row_ptr[:-1])
        w[orows, ocols] = ovals
    return w.to(torch.float32)


class QuarotFile:
    """Config, recipe and FP32 weights of a quarot quantized file."""

    def __init__(self, path: str, device: str):
        self.path = path
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            if "quarot" not in meta:
                sys.exit(f"{path}: not a quarot quantized model (no 'quarot' metadata)")
            info = json.loads(meta["quarot"])
            if info.get("format_version", 0) > 3:
                sys.exit(f"{path}: format {info['format_version']}, this script reads 1 to 3")
            self.info = info
            self.config = info["config"]
            self.recipe = info["recipe"]
            self.tokenizer_json = meta.get("tokenizer.json")
            names = set(f.keys())
            self.weights = {}
            for name, tinfo in info.get("tensors", {}).items():
                if tinfo["kind"] == "codebook":
                    self.weights[name] = dequantize_codebook(f, name, tinfo).to(device)
                    continue
                if tinfo["kind"] != "int":
                    sys.exit(f"{path}: tensor {name} uses encoding '{tinfo['kind']}', not supported here")
                zeros = f.get_tensor(name + ".zeros") if not tinfo["symmetric"] else None
                self.weights[name] = dequantize(f.get_tensor(name + ".qweight"), f.get_tensor(name + ".scales"),
                                                zeros, tinfo).to(device)
            parts = ("qweight", "scales", "zeros", "cb_bits", "cb_centroids", "cb_indices", "cb_outlier_row_ptr",
                     "cb_outlier_cols", "cb_outlier_values")
            quantized_parts = {f"{q}.{part}" for q in self.weights for part in parts}
            for name in names - quantized_parts:
                self.weights[name] = f.get_tensor(name).to(torch.float32).to(device)
        if "lm_head" not in self.weights:
            self.weights["lm_head"] = self.weights["tok_embeddings"]


# ---------------------------------------------------------------------------
# The runtime's arithmetic
# ---------------------------------------------------------------------------

def sylvester(p: int, device) -> torch.Tensor:
    h = torch.ones(1, 1, dtype=torch.float32, device=device)
    while h.shape[0] < p:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


class OnlineRotation:
    """Rows of n = k*p*inner seen as [k, p, inner]: y = (M x_a) over a, Hadamard_p/sqrt(p) over p."""

    def __init__(self, spec: dict, device):
        self.k, self.p, self.inner = spec["k"], spec["p"], spec["inner"]
        self.m = torch.tensor(spec["m"], dtype=torch.float32, device=device).view(self.k, self.k) if spec["m"] else None
        self.h = sylvester(self.p, device) if self.p > 1 else None
        self.identity = self.k == 1 and self.p == 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return x
        shape = x.shape
        y = x.reshape(-1, self.k, self.p, self.inner)
        if self.h is not None:
            y = torch.einsum("napc,bp->nabc", y, self.h) * (1.0 / math.sqrt(self.p))
        if self.m is not None:
            y = torch.einsum("napc,ba->nbpc", y, self.m)
        return y.reshape(shape)


def fake_quant(x: torch.Tensor, bits: int, clip: float, group: int, symmetric: bool) -> torch.Tensor:
    """kernels/cpu/fake_quant.h, groups of `group` along the last dim (0 = whole row)."""
    if bits <= 0 or bits >= 16:
        return x
    shape = x.shape
    g = shape[-1] if group == 0 else group
    y = x.reshape(-1, g)
    if symmetric:
        qmax = float(2 ** (bits - 1) - 1)
        s = clip * y.abs().amax(dim=1, keepdim=True) / qmax
        safe = torch.where(s == 0, torch.ones_like(s), s)
        q = torch.clamp(torch.round(y / safe), -qmax - 1.0, qmax)
        out = torch.where(s == 0, y, safe * q)
    else:
        qmax = float(2 ** bits - 1)
        lo = torch.clamp(y.amin(dim=1, keepdim=True), max=0.0) * clip
        hi = torch.clamp(y.amax(dim=1, keepdim=True), min=0.0) * clip
        s = (hi - lo) / qmax
        safe = torch.where(s == 0, torch.ones_like(s), s)
        z = torch.round(-lo / safe)
        q = torch.clamp(torch.round(y / safe) + z, 0.0, qmax)
        out = torch.where(s == 0, y, safe * (q - z))
    return out.reshape(shape)


def act_quant(x, spec):
    if not spec or spec["bits"] <= 0 or spec["bits"] >= 16:
        return x
    return fake_quant(x, spec["bits"], spec["clip_ratio"], spec["group"], spec["symmetric"])


class Runtime:
    def __init__(self, qf: QuarotFile, device):
        c, r = qf.config, qf.recipe
        self.c, self.r, self.w = c, r, qf.weights
        self.device = device
        self.qk_rot = OnlineRotation(r["qk_rotation"], device)
        self.o_rot = OnlineRotation(r["o_proj_input"], device)
        self.down_rot = OnlineRotation(r["down_proj_input"], device)
        overrides = r.get("act_overrides", {})
        self.act = {slot: overrides.get(slot, r["act"]) for slot in ("qkv", "o", "gate_up", "down")}
        self.act["lm_head"] = r["lm_head_act"]
        half = c["head_dim"] // 2
        if c["rope_scaling"]["type"] != "none":
            sys.exit("rope scaling other than 'none' is not implemented here")
        exponent = torch.arange(0, half, dtype=torch.float32) * 2.0 / c["head_dim"]
        self.inv_freq = (1.0 / torch.pow(torch.tensor(float(c["rope_theta"]), dtype=torch.float32), exponent)).to(device)

    perturb = 0.0  # > 0: multiply every linear output by (1 + perturb * N(0,1)), seeded (sensitivity probe)

    def linear(self, x, name, slot, rotation=None):
        if rotation is not None:
            x = rotation(x)
        x = act_quant(x, self.act[slot])
        y = x @ self.w[name].T
        bias = self.w.get(name.replace(".w", ".b")) if name.split(".")[-1] in ("wq", "wk", "wv") else None
        y = y + bias if bias is not None else y
        if self.perturb > 0.0:
            if not hasattr(self, "_noise"):
                self._noise = torch.Generator(device=y.device).manual_seed(1)
            y = y * (1.0 + self.perturb * torch.randn(y.shape, generator=self._noise, device=y.device))
        return y

    def rmsnorm(self, x, weight):
        inv = torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + self.c["rms_eps"])
        return x * inv * weight

    def rope(self, x, positions):
        # x [B, T, heads, hd]; transformers' rotate_half convention.
        angle = positions.to(torch.float32)[:, None] * self.inv_freq[None, :]
        cos, sin = torch.cos(angle)[None, :, None, :], torch.sin(angle)[None, :, None, :]
        half = x.shape[-1] // 2
        a, b = x[..., :half], x[..., half:]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)

    def kv_quant(self, x, spec):
        # x [B, T, kv_heads, hd]: one group per head (or `group` values), position 0 FP with IntactKV.
        if spec["bits"] <= 0 or spec["bits"] >= 16:
            return x
        y = fake_quant(x, spec["bits"], spec["clip_ratio"], spec["group"], spec["symmetric"])
        if self.r.get("intact_kv"):
            y[:, 0] = x[:, 0]
        return y

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, T] -> logits [B, T, vocab], every sequence starting at position 0."""
        c, w = self.c, self.w
        B, T = tokens.shape
        nh, nkv, hd = c["n_heads"], c["n_kv_heads"], c["head_dim"]
        x = w["tok_embeddings"][tokens]
        positions = torch.arange(T, device=tokens.device)
        mask = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril()
        for i in range(c["n_layers"]):
            p = f"layers.{i}."
            h = self.rmsnorm(x, w[p + "attn_norm"])
            q = self.linear(h, p + "wq", "qkv").view(B, T, nh, hd)
            k = self.linear(h, p + "wk", "qkv").view(B, T, nkv, hd)
            v = self.linear(h, p + "wv", "qkv").view(B, T, nkv, hd)
            q, k = self.rope(q, positions), self.rope(k, positions)
            q, k = self.qk_rot(q), self.qk_rot(k)
            k, v = self.kv_quant(k, self.r["k_cache"]), self.kv_quant(v, self.r["v_cache"])
            rep = nh // nkv
            qh = q.permute(0, 2, 1, 3)                                   # B, nh, T, hd
            kh = k.permute(0, 2, 1, 3).repeat_interleave(rep, dim=1)
            vh = v.permute(0, 2, 1, 3).repeat_interleave(rep, dim=1)
            scores = (qh @ kh.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
            scores = scores.masked_fill(~mask, float("-inf"))
            att = torch.softmax(scores, dim=-1) @ vh
            att = att.permute(0, 2, 1, 3).reshape(B, T, nh * hd)
            x = x + self.linear(att, p + "wo", "o", self.o_rot)
            h = self.rmsnorm(x, w[p + "ffn_norm"])
            gate = self.linear(h, p + "w_gate", "gate_up")
            up = self.linear(h, p + "w_up", "gate_up")
            x = x + self.linear(torch.nn.functional.silu(gate) * up, p + "w_down", "down", self.down_rot)
        h = self.rmsnorm(x, w["output_norm"])
        return self.linear(h, "lm_head", "lm_head")


# ---------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------

def make_tokenizer(qf: QuarotFile):
    from tokenizers import Tokenizer
    if not qf.tokenizer_json:
        sys.exit(f"{qf.path}: no tokenizer.json in the metadata")
    tok = Tokenizer.from_str(qf.tokenizer_json)
    bos = [qf.config["bos_id"]] if qf.config.get("add_bos") else []
    return lambda s: bos + tok.encode(s, add_special_tokens=False).ids


def perplexity(rt: Runtime, ids: list, seqlen: int, max_chunks, batch: int, log):
    n = len(ids) // seqlen
    if max_chunks:
        n = min(n, max_chunks)
    if n == 0:
        sys.exit(f"text has {len(ids)} tokens, fewer than one window of {seqlen}")
    data = torch.tensor(ids[:n * seqlen], dtype=torch.long, device=rt.device).view(n, seqlen)
    chunk_nll = []
    for start in range(0, n, batch):
        windows = data[start:start + batch]
        logits = rt.forward(windows)
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        nll = -logp.gather(2, windows[:, 1:, None]).squeeze(2).double()
        chunk_nll.extend(nll.mean(dim=1).tolist())
        log(f"[{len(chunk_nll)}/{n}] running ppl {math.exp(math.fsum(chunk_nll) / len(chunk_nll)):.6f}")
    mean = math.fsum(chunk_nll) / n
    return {"ppl": math.exp(mean), "nll": mean, "chunks": n, "scored_tokens": n * (seqlen - 1),
            "chunk_nll": chunk_nll, "tokens_in_text": len(ids)}


def load_hellaswag(path: str):
    raw = bz2.open(path, "rt", encoding="utf-8").read() if path.endswith(".bz2") else open(path, encoding="utf-8").read()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in raw.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) % 6:
        sys.exit(f"{path}: {len(lines)} lines is not a whole number of 6-line tasks")
    return [(lines[i], int(lines[i + 1]), lines[i + 2:i + 6]) for i in range(0, len(lines), 6)]


def hellaswag(rt: Runtime, encode, tasks, batch_tasks: int, log):
    correct = correct_norm = 0
    done = 0
    pad = 0
    for start in range(0, len(tasks), batch_tasks):
        seqs, spans, meta = [], [], []
        for context, label, endings in tasks[start:start + batch_tasks]:
            ctx = context.rstrip(" ")
            moved = " " * (len(context) - len(ctx))
            ctx_ids = encode(ctx)
            conts, chars = [], []
            for e in endings:
                whole = encode(ctx + moved + " " + e)
                if len(whole) <= len(ctx_ids):
                    sys.exit(f"HellaSwag ending '{e}' adds no tokens to its context")
                conts.append(whole[len(ctx_ids):])
                chars.append(len(e))  # lm-eval: len(choice), the " " delimiter excluded
            for cont in conts:
                seq = ctx_ids + cont[:-1]
                seqs.append(seq)
                spans.append((len(ctx_ids), cont))
            meta.append((label, chars))
        longest = max(len(s) for s in seqs)
        tokens = torch.full((len(seqs), longest), pad, dtype=torch.long, device=rt.device)
        for r, s in enumerate(seqs):
            tokens[r, :len(s)] = torch.tensor(s, device=rt.device)
        logits = rt.forward(tokens)
        logp = torch.log_softmax(logits.float(), dim=-1)
        for t, (label, chars) in enumerate(meta):
            ll = []
            for e in range(4):
                n_ctx, cont = spans[t * 4 + e]
                rows = logp[t * 4 + e, n_ctx - 1:n_ctx - 1 + len(cont)]
                idx = torch.tensor(cont, device=rt.device)
                ll.append(float(rows.gather(1, idx[:, None]).double().sum()))
            best = max(range(4), key=lambda e: (ll[e], -e))
            best_norm = max(range(4), key=lambda e: (ll[e] / max(chars[e], 1), -e))
            correct += best == label
            correct_norm += best_norm == label
            done += 1
        log(f"[{done}/{len(tasks)}] acc {correct / done:.4f} acc_norm {correct_norm / done:.4f}")
    se = lambda p: math.sqrt(p * (1 - p) / (done - 1)) if done > 1 else 0.0  # noqa: E731
    return {"tasks": done, "acc": correct / done, "acc_stderr": se(correct / done),
            "acc_norm": correct_norm / done, "acc_norm_stderr": se(correct_norm / done)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=["ppl", "hellaswag"])
    ap.add_argument("model", help="a .quarot.safetensors file written by `quarot quantize`")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (default: %(default)s)")
    ap.add_argument("--text", default=str(DATA / "wikitext-2-raw-v1.test.txt"))
    ap.add_argument("--data", default=str(DATA / "hellaswag_val_full.txt.bz2"))
    ap.add_argument("--seqlen", type=int, default=2048)
    ap.add_argument("--max-chunks", type=int, default=0, help="first N windows only (0 = all)")
    ap.add_argument("--limit", type=int, default=0, help="first N HellaSwag tasks only (0 = all)")
    ap.add_argument("--batch", type=int, default=4, help="windows (ppl) or tasks (hellaswag) per forward")
    ap.add_argument("--perturb", type=float, default=0.0,
                    help="multiply every linear output by (1 + P*N(0,1)), seeded: how much FP32-level noise moves "
                         "the result (4-bit activation codes flip); 0 = off")
    ap.add_argument("--json", help="write the result JSON here")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    # FP32 as the C++ runtime: no TF32 shortcuts on the GPU.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    log = (lambda s: None) if a.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    t0 = time.time()
    qf = QuarotFile(a.model, a.device)
    rt = Runtime(qf, a.device)
    rt.perturb = a.perturb
    encode = make_tokenizer(qf)
    load_s = time.time() - t0
    t0 = time.time()
    if a.task == "ppl":
        with open(a.text, encoding="utf-8") as f:
            ids = encode(f.read())
        result = perplexity(rt, ids, a.seqlen, a.max_chunks, a.batch, log)
    else:
        tasks = load_hellaswag(a.data)
        if a.limit:
            tasks = tasks[:a.limit]
        result = hellaswag(rt, encode, tasks, a.batch, log)
    result.update({"model": a.model, "scheme": qf.info.get("scheme"), "device": a.device,
                   "device_name": torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu",
                   "torch": torch.__version__, "perturb": a.perturb, "load_seconds": load_s, "seconds": time.time() - t0,
                   "engine": "tools/reference/quarot_runtime.py"})
    if a.json:
        write_json_atomic(a.json, result, indent=2)
    summary = {k: v for k, v in result.items() if k != "chunk_nll"}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
