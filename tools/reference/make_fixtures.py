"""Writes the small transformers reference fixtures committed under tests/reference/.

The C++ tests compare against these files, so the transformers checks run in CI with
no torch. Everything here comes from HF transformers/tokenizers reading the default
GGUF on its own (offline, FP32, eager attention); nothing comes from quarot.

  tests/reference/logits.json        prefill and step-decode logits of 5 prompts at 3
                                     positions each, on a vocabulary subset (every
                                     193rd id plus the 32 largest of each row)
  tests/reference/gguf_weights.json  sampled weight values of transformers' GGUF import
  tests/reference/tokenizer_hf.json  HF's tokenizer.json without vocab/merges, plus an
                                     FNV-1a fingerprint of its vocab and merges
  tests/reference/tokenizer_variants.json
                                     pre-tokenizer variants (Llama 3, Qwen2, Digits) with
                                     HF ids for the tricky strings and 8000 WikiText chars
  tests/reference/wikitext2_test_ids.json
                                     HF ids of the whole WikiText-2 test file as counts
                                     and FNV-1a hashes of 4096-id chunks
  tests/tokenizer/data/smollm2_cases.json
                                     HF ids for the tricky strings + 20000 WikiText chars

Run through tools/reference/make_fixtures.sh (sets up the venv and the model first).
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hf_model  # noqa: E402  (sets the offline environment before transformers loads)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from check_tokenizer import TRICKY_STRINGS  # noqa: E402
from dump_logits import PROMPTS, decode_logits, prefill_logits  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "reference"
CASES_PATH = REPO / "tests" / "tokenizer" / "data" / "smollm2_cases.json"
DATA = Path(os.environ.get("QUAROT_DATA", REPO.parent / "shared" / "data"))
WIKITEXT = DATA / "wikitext-2-raw-v1.test.txt"

VOCAB_STRIDE = 193
TOP_K = 32
CHUNK = 4096


def f32(values):
    """Shortest decimal that reads back as the same float32."""
    return [float(np.format_float_positional(np.float32(v), unique=True)) for v in np.asarray(values).ravel()]


def fnv1a64(data: bytes, h: int = 0xCBF29CE484222325) -> int:
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def write_json(path: Path, obj, indent=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=indent, separators=(",", ":") if indent is None else None)
                   + "\n", encoding="utf-8")
    os.replace(tmp, path)
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size} bytes)", flush=True)


def versions():
    import tokenizers
    import transformers
    return {"torch": torch.__version__, "transformers": transformers.__version__, "tokenizers": tokenizers.__version__}


def logits_fixture(model, tokenizer):
    vocab = model.config.vocab_size
    stride_ids = np.arange(0, vocab, VOCAB_STRIDE)
    prompts = []
    for text in PROMPTS:
        ids = tokenizer(text, return_tensors="pt").input_ids[0]
        prefill = prefill_logits(model, ids)
        decode = decode_logits(model, ids)
        n = ids.numel()
        rows = []
        for pos in sorted({0, n // 2, n - 1}):
            top = np.argsort(-prefill[pos], kind="stable")[:TOP_K]
            subset = np.union1d(stride_ids, top)
            rows.append({"position": int(pos), "token_ids": subset.tolist(),
                         "prefill": f32(prefill[pos, subset]), "decode": f32(decode[pos, subset])})
        prompts.append({"text": text, "ids": ids.tolist(), "rows": rows})
        print(f"logits: prompt of {n} tokens, positions {[r['position'] for r in rows]}", flush=True)
    return {"what": "HF transformers logits (FP32, eager) of the default GGUF; prefill = one forward over the "
                    "prompt, decode = tokens fed one at a time through the KV cache; token_ids = every "
                    f"{VOCAB_STRIDE}th id plus the {TOP_K} largest prefill logits of the row",
            "vocab": vocab, **versions(), "prompts": prompts}


def weights_fixture(model):
    rng = np.random.default_rng(20261201)
    params = dict(model.named_parameters())
    names = ["model.embed_tokens.weight", "model.norm.weight"]
    for layer in (0, 17, 29):
        p = f"model.layers.{layer}."
        names += [p + s for s in ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                                  "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                                  "mlp.down_proj.weight", "input_layernorm.weight",
                                  "post_attention_layernorm.weight")]
    tensors = []
    for name in names:
        t = params[name].detach().float().cpu().numpy()
        if t.ndim == 1:
            idx = [[int(i)] for i in rng.choice(t.shape[0], size=16, replace=False)]
            values = [t[i[0]] for i in idx]
        else:
            rows = rng.integers(0, t.shape[0], size=24)
            cols = rng.integers(0, t.shape[1], size=24)
            idx = [[int(r), int(c)] for r, c in zip(rows, cols)]
            values = [t[r, c] for r, c in idx]
        tensors.append({"name": name, "shape": list(t.shape), "index": idx, "values": f32(values)})
    c = model.config
    rope = getattr(c, "rope_theta", None) or (getattr(c, "rope_parameters", None) or {}).get("rope_theta")
    config = {"hidden_size": c.hidden_size, "num_hidden_layers": c.num_hidden_layers,
              "num_attention_heads": c.num_attention_heads, "num_key_value_heads": c.num_key_value_heads,
              "intermediate_size": c.intermediate_size, "vocab_size": c.vocab_size, "rope_theta": float(rope),
              "rms_norm_eps": float(c.rms_norm_eps), "tie_word_embeddings": bool(c.tie_word_embeddings)}
    return {"what": "values of transformers' own GGUF import (dequantized to FP32, Q/K rows un-permuted), "
                    "HF parameter names, at seeded random positions; config as transformers reads the metadata",
            **versions(), "config": config, "tensors": tensors}


def vocab_merges_fingerprint(tokenizer_json: dict):
    """FNV-1a 64 over 'token\\n' for ids 0..V-1, then 'left right\\n' per merge."""
    model = tokenizer_json["model"]
    by_id = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    h = 0xCBF29CE484222325
    for token, _ in by_id:
        h = fnv1a64(token.encode("utf-8") + b"\n", h)
    for m in model["merges"]:
        pair = m if isinstance(m, str) else f"{m[0]} {m[1]}"
        h = fnv1a64(pair.encode("utf-8") + b"\n", h)
    return {"vocab": len(by_id), "merges": len(model["merges"]), "fnv1a64": f"{h:016x}"}


def tokenizer_fixtures(tokenizer, text):
    full = json.loads(tokenizer.backend_tokenizer.to_str())
    skeleton = json.loads(json.dumps(full))
    fingerprint = vocab_merges_fingerprint(full)
    skeleton["model"]["vocab"] = {}
    skeleton["model"]["merges"] = []
    write_json(OUT / "tokenizer_hf.json", {
        "what": "HF tokenizer.json of the default GGUF with model.vocab and model.merges emptied; the test "
                "fills them from the GGUF after checking the fingerprint",
        **versions(), "vocab_merges": fingerprint, "tokenizer": skeleton}, indent=1)

    from tokenizers import Regex, Tokenizer, pre_tokenizers
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS
    variants = {
        "llama3": [pre_tokenizers.Split(Regex(GGUF_PRE_TOKENIZER_SPLITS["llama-bpe"]), behavior="isolated"),
                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)],
        "qwen2": [pre_tokenizers.Split(Regex(GGUF_PRE_TOKENIZER_SPLITS["qwen2"]), behavior="isolated"),
                  pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)],
        "digits": [pre_tokenizers.Digits(individual_digits=True),
                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)],
    }
    texts = TRICKY_STRINGS + ["I'M SURE HE'S 'RE 'Ve", "x  \n\n\t y\r\n\r\nz", "1234567 89 ١٢٣٤", text[:8000]]
    out = {}
    for name, steps in variants.items():
        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        backend.pre_tokenizer = pre_tokenizers.Sequence(steps)
        out[name] = {"pre_tokenizer": json.loads(backend.to_str())["pre_tokenizer"],
                     "cases": [{"text": t, "ids": backend.encode(t).ids} for t in texts]}
    write_json(OUT / "tokenizer_variants.json", {
        "what": "the default GGUF's vocabulary under other pre-tokenizers, HF tokenizers ids (no special tokens "
                "added); the test swaps pre_tokenizer into tokenizer_hf.json", **versions(), "variants": out})

    ids = tokenizer(text).input_ids
    chunks = []
    for i in range(0, len(ids), CHUNK):
        data = "".join(f"{t}\n" for t in ids[i:i + CHUNK]).encode()
        chunks.append(f"{fnv1a64(data):016x}")
    write_json(OUT / "wikitext2_test_ids.json", {
        "what": f"HF tokenizer(text).input_ids of the whole WikiText-2 test file, as FNV-1a 64 of each chunk of "
                f"{CHUNK} ids written one per line ('id\\n')", **versions(),
        "text_bytes": len(text.encode("utf-8")), "n_ids": len(ids), "chunk": CHUNK, "chunks": chunks}, indent=1)

    cases = [{"text": s, "ids": tokenizer(s).input_ids} for s in TRICKY_STRINGS]
    prefix = text[:20000]
    cases.append({"text": prefix, "ids": tokenizer(prefix).input_ids, "name": "wikitext2-test-first-20000-chars"})
    write_json(CASES_PATH, {"source": f"transformers AutoTokenizer({hf_model.DEFAULT_GGUF.name}), "
                                      "tokenizer(text).input_ids", "cases": cases}, indent=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    hf_model.add_model_args(parser)
    args = parser.parse_args()
    start = time.time()
    with open(WIKITEXT, encoding="utf-8") as f:  # as tools/reference/perplexity.py reads it
        text = f.read()
    model, tokenizer = hf_model.load(args.model, args.threads, args.device)
    tokenizer_fixtures(tokenizer, text)
    write_json(OUT / "gguf_weights.json", weights_fixture(model))
    write_json(OUT / "logits.json", logits_fixture(model, tokenizer))
    print(f"done in {time.time() - start:.1f}s")


if __name__ == "__main__":
    main()
