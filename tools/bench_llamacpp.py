#!/usr/bin/env python3
"""llama.cpp baseline for `quarot bench`: same model, same token counts, same threads.

Runs inside the venv that tools/bench_llamacpp.sh makes (llama-cpp-python, which
builds llama.cpp from source, plus numpy and gguf). Two steps:

  prepare  SOURCE.gguf OUTDIR   writes OUTDIR/<stem>.F32.gguf by dequantizing every
           tensor of SOURCE with gguf-py (exact: the F32 values are the ones the source
           encodes, which is also what quarot's FP32 model computes with), then F16, Q8_0
           and Q4_0 files quantized from that F32 file by llama.cpp's own
           llama_model_quantize (so Q4_0/Q8_0 are not requantized from Q4_1 codes).
  bench    GGUF [GGUF ...]       loads every file at once and interleaves repetitions
           (A B C A B C ...). Per repetition and model: prefill of a random prompt as
           ONE llama_decode batch of --prompt tokens (logits of the last token only);
           then --decode single-token llama_decode steps after it; then, cache cleared,
           --decode single-token steps from an empty context. Each step's next token
           is the numpy argmax of its logits (included in the time: it is part of
           decoding, and quarot bench does the same). JSON on stdout.

  ppl      GGUF [GGUF ...] --tokens IDS.json
           perplexity by `quarot ppl`'s default (GPTQ) protocol on the token ids that
           `quarot ppl --tokens-out` wrote (our tokenizer's stream): windows of
           --seqlen tokens cut without overlap from the start, each evaluated alone
           from an empty cache as one batch with every position's logits, every token
           after the first scored (NLL = log-sum-exp of the logits minus the target's,
           in float64); ppl = exp(mean over windows of each window's mean NLL). The
           first --windows windows, the same ones `quarot ppl --max-chunks N` scores.
           Also reports whether llama.cpp's own tokenizer gives the same ids, and each
           file's bits per weight (all tensors, and the linears of the blocks alone).

Token ids are random (seeded) and uniform over the vocabulary: the cost of a forward
pass does not depend on which ids they are.
"""
import argparse
import ctypes
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import llama_cpp as L

# The llama.cpp commit each llama-cpp-python release vendors (from its CHANGELOG);
# a source build from the sdist reports "unknown" itself.
LLAMA_CPP_COMMITS = {"0.3.36": "0c1e57098"}

# Q3_K is llama-quantize's alias for Q3_K_M (its "Q3_K" row); Q2_K is llama.cpp's mixed
# Q2_K recipe (some tensors at Q3_K/Q4_K/Q6_K). No importance matrix: the plain recipes.
FTYPES = {
    "F16": L.LLAMA_FTYPE_MOSTLY_F16,
    "Q8_0": L.LLAMA_FTYPE_MOSTLY_Q8_0,
    "Q4_0": L.LLAMA_FTYPE_MOSTLY_Q4_0,
    "Q4_K": L.LLAMA_FTYPE_MOSTLY_Q4_K_M,
    "Q3_K": L.LLAMA_FTYPE_MOSTLY_Q3_K_M,
    "Q3_K_S": L.LLAMA_FTYPE_MOSTLY_Q3_K_S,
    "Q2_K": L.LLAMA_FTYPE_MOSTLY_Q2_K,
}


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---------------------------------------------------------------- prepare


def write_f32_gguf(src, dst):
    """Copies SOURCE's metadata and stores every tensor dequantized to F32."""
    import gguf

    reader = gguf.GGUFReader(str(src))
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    tmp = Path(str(dst) + f".tmp.{os.getpid()}")
    writer = gguf.GGUFWriter(str(tmp), arch)
    for field in reader.fields.values():
        # GGUF.* are virtual fields of the reader; the writer adds the architecture.
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if field.name == gguf.Keys.General.FILE_TYPE:
            value = int(gguf.LlamaFileType.ALL_F32)
        writer.add_key_value(field.name, value, vtype, sub_type=sub)
    for t in reader.tensors:
        # dequantize() returns the numpy shape (reversed GGUF dims), which add_tensor expects.
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
        writer.add_tensor(t.name, np.ascontiguousarray(w), raw_dtype=gguf.GGMLQuantizationType.F32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, dst)


def quantize(src, dst, ftype, threads):
    params = L.llama_model_quantize_default_params()
    params.nthread = threads
    params.ftype = ftype
    params.allow_requantize = False  # the input is F32: nothing is requantized
    tmp = str(dst) + f".tmp.{os.getpid()}"
    rc = L.llama_model_quantize(str(src).encode(), tmp.encode(), ctypes.byref(params))
    if rc != 0:
        sys.exit(f"llama_model_quantize({src} -> {dst}) failed with {rc}")
    os.replace(tmp, dst)


def cmd_prepare(args):
    src = Path(args.source)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    stem = src.name.split(".")[0]
    f32 = out / f"{stem}.F32.gguf"
    if not f32.exists() or f32.stat().st_mtime < src.stat().st_mtime:
        print(f"writing {f32}", file=sys.stderr)
        write_f32_gguf(src, f32)
    L.llama_backend_init()
    made = [str(f32)]
    for name in args.types.split(","):
        if name == "F32":
            continue
        if name not in FTYPES:
            sys.exit(f"unknown type {name} (known: F32, {', '.join(FTYPES)})")
        dst = out / f"{stem}.{name}.gguf"
        if not dst.exists() or dst.stat().st_mtime < f32.stat().st_mtime:
            print(f"writing {dst}", file=sys.stderr)
            quantize(f32, dst, FTYPES[name], args.threads)
        made.append(str(dst))
    print("\n".join(made))


# ---------------------------------------------------------------- bits per weight


def gguf_bits(path):
    """Bytes and elements per tensor class: the block linears (blk.*.weight, 2-D),
    the embedding / output, the rest (norms)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    acc = {}
    types = {}
    for t in reader.tensors:
        n = int(np.prod([int(d) for d in t.shape]))
        cls = "linears" if t.name.startswith("blk.") and len(t.shape) == 2 else (
            "embedding_output" if t.name.startswith(("token_embd", "output.")) else "other")
        a = acc.setdefault(cls, {"bytes": 0, "elements": 0})
        a["bytes"] += int(t.n_bytes)
        a["elements"] += n
        if cls != "other":
            key = f"{cls}:{t.tensor_type.name}"
            types[key] = types.get(key, 0) + n
    out = {k: dict(v, bits_per_weight=8.0 * v["bytes"] / v["elements"]) for k, v in acc.items()}
    total_b = sum(v["bytes"] for v in acc.values())
    total_n = sum(v["elements"] for v in acc.values())
    out["all_tensors"] = {"bytes": total_b, "elements": total_n, "bits_per_weight": 8.0 * total_b / total_n}
    out["file_bytes"] = os.path.getsize(path)
    out["file_bits_per_param"] = 8.0 * os.path.getsize(path) / total_n
    out["elements_by_type"] = types
    # What one decode step reads: every tensor but the embedding table, which is one
    # row per token, unless it is also the output matrix (tied, no output.weight).
    names = {t.name: int(t.n_bytes) for t in reader.tensors}
    tied = "output.weight" not in names
    out["decode_weight_bytes"] = total_b - (0 if tied else names.get("token_embd.weight", 0))
    out["tied_embedding"] = tied
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()

    def meta(key):
        f = reader.fields.get(f"{arch}.{key}")
        return int(f.contents()) if f is not None else None

    n_layer, n_embd = meta("block_count"), meta("embedding_length")
    n_head, n_head_kv = meta("attention.head_count"), meta("attention.head_count_kv") or meta("attention.head_count")
    if None not in (n_layer, n_embd, n_head, n_head_kv):
        # llama.cpp's default cache: K and V in F16 (type_k = type_v = 1).
        out["kv_bytes_per_position"] = n_layer * 2 * (n_embd * n_head_kv // n_head) * 2
    return out


# ---------------------------------------------------------------- ppl


def llama_tokenize_text(model, text):
    vocab = L.llama_model_get_vocab(model)
    raw = text.encode()
    cap = len(raw) + 16
    buf = (L.llama_token * cap)()
    n = L.llama_tokenize(vocab, raw, len(raw), buf, cap, False, False)
    if n < 0:
        sys.exit(f"llama_tokenize needs {-n} tokens, more than {cap}")
    return list(buf[:n])


def cmd_ppl(args):
    L.llama_log_set(_keep_log, ctypes.c_void_p())
    L.llama_backend_init()
    tok = json.load(open(args.tokens))
    ids = np.asarray(tok["ids"], dtype=np.int64)
    seqlen = args.seqlen if args.seqlen else int(tok["seqlen"])
    if tok.get("protocol", "gptq") != "gptq":
        sys.exit(f"{args.tokens}: written for protocol {tok.get('protocol')}, this scores the gptq protocol")
    if tok.get("bos"):
        sys.exit(f"{args.tokens}: a stream with BOS is not handled here")
    total = len(ids) // seqlen
    windows = min(total, args.windows) if args.windows > 0 else total
    results = []
    for path in args.gguf:
        mp = L.llama_model_default_params()
        model = L.llama_model_load_from_file(path.encode(), mp)
        if not model:
            sys.exit(f"{path}: llama.cpp could not load it")
        same = None
        if tok.get("text") and os.path.exists(tok["text"]):
            same = llama_tokenize_text(model, open(tok["text"], encoding="utf-8").read()) == ids.tolist()
        cp = L.llama_context_default_params()
        cp.n_ctx = seqlen
        cp.n_batch = seqlen
        cp.n_ubatch = min(seqlen, 512)
        cp.n_threads = args.threads
        cp.n_threads_batch = args.threads
        cp.no_perf = True
        ctx = L.llama_init_from_model(model, cp)
        if not ctx:
            sys.exit(f"{path}: llama.cpp could not create a context")
        n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
        batch = L.llama_batch_init(seqlen, 0, 1)
        nlls = []
        t0 = time.perf_counter()
        for w in range(windows):
            win = ids[w * seqlen:(w + 1) * seqlen]
            L.llama_memory_clear(L.llama_get_memory(ctx), True)
            batch.n_tokens = seqlen
            for i in range(seqlen):
                batch.token[i] = int(win[i])
                batch.pos[i] = i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = 1
            rc = L.llama_decode(ctx, batch)
            if rc != 0:
                sys.exit(f"{path}: llama_decode returned {rc}")
            logits = np.ctypeslib.as_array(L.llama_get_logits(ctx), shape=(seqlen, n_vocab))
            nll = 0.0
            for r0 in range(0, seqlen - 1, 256):
                r1 = min(seqlen - 1, r0 + 256)
                z = logits[r0:r1].astype(np.float64)
                m = z.max(axis=1)
                lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
                nll += float((lse - z[np.arange(r1 - r0), win[r0 + 1:r1 + 1]]).sum())
            nlls.append(nll / (seqlen - 1))
            print(f"{os.path.basename(path)} window {w + 1}/{windows}: nll {nlls[-1]:.6f}", file=sys.stderr)
        seconds = time.perf_counter() - t0
        L.llama_batch_free(batch)
        L.llama_free(ctx)
        L.llama_model_free(model)
        mean = float(np.mean(nlls))
        results.append({
            "file": os.path.basename(path),
            "ppl": float(np.exp(mean)),
            "nll": mean,
            "window_nll": nlls,
            "chunks": windows,
            "scored_tokens": windows * (seqlen - 1),
            "seconds": seconds,
            "llama_cpp_tokenization_identical": same,
            "bits": gguf_bits(path),
        })
    ver = getattr(L, "__version__", "unknown")
    print(json.dumps({
        "tool": "llama.cpp via llama-cpp-python (low-level API), NLL in numpy float64",
        "llama_cpp_python_version": ver,
        "llama_cpp_commit": LLAMA_CPP_COMMITS.get(ver, "unknown"),
        "protocol": "gptq (quarot ppl default): non-overlapping windows from the start, each alone, every token after the first scored",
        "tokens_file": os.path.basename(args.tokens),
        "tokens": int(len(ids)),
        "seqlen": seqlen,
        "threads": args.threads,
        "models": results,
    }, indent=2))


# ---------------------------------------------------------------- bench


_log_lines = []


@L.llama_log_callback
def _keep_log(level, text, user_data):
    # llama.cpp's log stays off stderr; the lines that say how it runs go into the JSON.
    _log_lines.append(text.decode(errors="replace") if text else "")


class Runner:
    def __init__(self, path, threads, n_ctx, n_batch):
        self.path = path
        mp = L.llama_model_default_params()
        self.model = L.llama_model_load_from_file(path.encode(), mp)
        if not self.model:
            sys.exit(f"{path}: llama.cpp could not load it")
        cp = L.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = n_batch
        cp.n_ubatch = n_batch  # the whole prompt in one micro-batch too
        cp.n_threads = threads
        cp.n_threads_batch = threads
        cp.no_perf = True
        self.flash_attn_type = int(cp.flash_attn_type)
        self.type_k, self.type_v = int(cp.type_k), int(cp.type_v)
        self.ctx = L.llama_init_from_model(self.model, cp)
        if not self.ctx:
            sys.exit(f"{path}: llama.cpp could not create a context")
        self.n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.batch = L.llama_batch_init(n_batch, 0, 1)
        buf = ctypes.create_string_buffer(256)
        L.llama_model_desc(self.model, buf, len(buf))
        self.desc = buf.value.decode()
        self.model_bytes = int(L.llama_model_size(self.model))
        self.n_params = int(L.llama_model_n_params(self.model))

    def clear(self):
        L.llama_memory_clear(L.llama_get_memory(self.ctx), True)

    def decode(self, tokens, pos0, want_logits):
        b = self.batch
        n = len(tokens)
        b.n_tokens = n
        for i, t in enumerate(tokens):
            b.token[i] = int(t)
            b.pos[i] = pos0 + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 1 if (want_logits and i == n - 1) else 0
        rc = L.llama_decode(self.ctx, b)
        if rc != 0:
            sys.exit(f"{self.path}: llama_decode returned {rc}")

    def argmax_last(self):
        p = L.llama_get_logits_ith(self.ctx, -1)
        return int(np.ctypeslib.as_array(p, shape=(self.n_vocab,)).argmax())

    def time_prefill(self, prompt):
        self.clear()
        t0 = time.perf_counter()
        self.decode(prompt, 0, True)
        self.argmax_last()
        return time.perf_counter() - t0

    def time_decode(self, first, pos0, n):
        t0 = time.perf_counter()
        tok = first
        for i in range(n):
            self.decode([tok], pos0 + i, True)
            tok = self.argmax_last()
        return time.perf_counter() - t0


def summary(count, seconds):
    rates = [count / s for s in seconds]
    return {
        "tokens": count,
        "tokens_per_s": statistics.median(rates),
        "tokens_per_s_best": max(rates),
        "tokens_per_s_all": rates,
    }


def cmd_bench(args):
    L.llama_log_set(_keep_log, ctypes.c_void_p())
    L.llama_backend_init()
    n_ctx = args.prompt + args.decode + 16
    runners = [Runner(p, args.threads, n_ctx, args.prompt) for p in args.gguf]
    rng = np.random.default_rng(args.seed)
    prompt = rng.integers(0, min(r.n_vocab for r in runners), size=args.prompt).tolist()
    for r in runners:  # warm-up: page the weights in, size the buffers
        r.time_prefill(prompt)
        r.time_decode(prompt[-1], args.prompt, 4)
    times = {r.path: {"prefill": [], "decode_after_prompt": [], "decode_empty": []} for r in runners}
    for _ in range(args.repeats):
        for r in runners:
            t = times[r.path]
            t["prefill"].append(r.time_prefill(prompt))
            t["decode_after_prompt"].append(r.time_decode(prompt[-1], args.prompt, args.decode))
            r.clear()
            t["decode_empty"].append(r.time_decode(prompt[0], 0, args.decode))
    models = []
    for r in runners:
        t = times[r.path]
        models.append({
            "file": os.path.basename(r.path),
            "description": r.desc,
            "file_bytes": os.path.getsize(r.path),
            "weight_bytes": r.model_bytes,
            "bits": gguf_bits(r.path),
            "params": r.n_params,
            "prefill": summary(args.prompt, t["prefill"]),
            "decode_after_prompt": dict(summary(args.decode, t["decode_after_prompt"]), context=args.prompt),
            "decode_empty": dict(summary(args.decode, t["decode_empty"]), context=0),
        })
    base = models[0]
    for m in models:
        m["ratio_to_first"] = {
            k: m[k]["tokens_per_s"] / base[k]["tokens_per_s"] for k in ("prefill", "decode_after_prompt", "decode_empty")
        }
    ver = getattr(L, "__version__", "unknown")
    out = {
        "tool": "llama.cpp via llama-cpp-python (low-level API)",
        "llama_cpp_python_version": ver,
        "llama_cpp_commit": LLAMA_CPP_COMMITS.get(ver, "unknown"),
        "system_info": L.llama_print_system_info().decode().strip(),
        "cpu": cpu_name(),
        "threads": args.threads,
        "repeats": args.repeats,
        "statistic": "median over repeats (best and all also given)",
        "flash_attn_type_requested": runners[0].flash_attn_type,
        "log_flash_attn": sorted({l.strip() for l in "".join(_log_lines).splitlines() if "flash_attn" in l}),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (OpenMP default: spinning)"),
        "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "unset"),
        "kv_cache_types": [runners[0].type_k, runners[0].type_v],
        "prompt_tokens": args.prompt,
        "decode_tokens": args.decode,
        "models": models,
    }
    print(json.dumps(out, indent=2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="make F32/F16/Q8_0/Q4_0 GGUFs of a source GGUF")
    p.add_argument("source")
    p.add_argument("outdir")
    p.add_argument("--types", default="F32,F16,Q8_0,Q4_0")
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(fn=cmd_prepare)
    b = sub.add_parser("bench", help="time prefill and decode of GGUF files")
    b.add_argument("gguf", nargs="+")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--prompt", type=int, default=512)
    b.add_argument("--decode", type=int, default=128)
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--seed", type=int, default=1234)
    b.set_defaults(fn=cmd_bench)
    q = sub.add_parser("ppl", help="perplexity of GGUF files on quarot's token stream (GPTQ protocol)")
    q.add_argument("gguf", nargs="+")
    q.add_argument("--tokens", required=True, help="JSON from quarot ppl --tokens-out")
    q.add_argument("--seqlen", type=int, default=0, help="window length (default: the file's)")
    q.add_argument("--windows", type=int, default=4, help="first N windows (0 = all)")
    q.add_argument("--threads", type=int, default=2)
    q.set_defaults(fn=cmd_ppl)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
