"""Dumps reference logits (HF transformers, FP32, eager) for the C++ engine's tests.

For each prompt i, into the output directory (layout in docs/reference.md):
  prompt_i.ids.txt     token ids, space-separated, one line
  prompt_i.prefill.f32 raw little-endian float32 [n_tokens, vocab]: one forward over
                       the whole sequence, row t = logits at position t
  prompt_i.decode.f32  raw little-endian float32 [n_tokens, vocab]: row t = logits after
                       feeding tokens 0..t one at a time through the KV cache
  index.json           {"prompts": [{"text", "n_tokens", "vocab", ...}], ...}

    python tools/reference/dump_logits.py [--out DIR]
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hf_model  # noqa: E402  (sets offline env before transformers loads)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import DynamicCache  # noqa: E402

LONG_PARAGRAPH = (
    "The Hadamard transform is an example of a generalized class of Fourier transforms. "
    "It performs an orthogonal, symmetric, involutive, linear operation on 2^m real numbers. "
    "In quantization of large language models, multiplying the hidden state by a randomized "
    "Hadamard matrix spreads the energy of a few very large activation channels across all "
    "channels, so that a uniform four-bit grid wastes far less of its range on outliers. "
    "Because the matrix is orthogonal, the rotation can be folded into the neighbouring "
    "weight matrices without changing the output of the network in exact arithmetic, and "
    "the remaining online rotations are computed with a fast Walsh-Hadamard transform in "
    "O(n log n) operations. The key and value caches are rotated as well, which lets them be "
    "stored in four bits, reducing memory traffic during generation. Perplexity on WikiText-2 "
    "is the customary measure of how much accuracy such a scheme loses compared with the "
    "full-precision model, and small models are usually the hardest case, because every "
    "channel carries a larger share of the information and errors have fewer places to hide."
)

PROMPTS = [
    "The capital of France is",
    LONG_PARAGRAPH,
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
    "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n"
    "print([fibonacci(i) for i in range(10)])\n",
    "Unicode: naïve café, Straße, Ελληνικά, русский, 日本語のテキスト, 中文, 한국어, "
    "emoji 🙂🚀 and math ∑ x² ≤ ∞ — done.",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
]


def write_f32(path: Path, array: np.ndarray) -> None:
    # Explicit little-endian float32, C order: the C++ side reads it as raw bytes.
    array.astype("<f4", copy=False).tofile(path)


@torch.inference_mode()
def prefill_logits(model, ids: torch.Tensor) -> np.ndarray:
    return model(ids.unsqueeze(0)).logits[0].float().cpu().numpy()


@torch.inference_mode()
def decode_logits(model, ids: torch.Tensor) -> np.ndarray:
    cache = DynamicCache(config=model.config)
    rows = []
    for t in range(ids.numel()):
        out = model(ids[t:t + 1].unsqueeze(0), past_key_values=cache, use_cache=True,
                    position_ids=torch.tensor([[t]], device=ids.device),
                    cache_position=torch.tensor([t], device=ids.device))
        cache = out.past_key_values
        rows.append(out.logits[0, -1].float().cpu().numpy())
    return np.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    hf_model.add_model_args(parser)
    parser.add_argument("--out", default=str(hf_model.REFERENCE_DIR / "logits"),
                        help="output directory (default: %(default)s)")
    args = parser.parse_args()

    start = time.time()
    model, tokenizer = hf_model.load(args.model, args.threads, args.device)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = model.config.vocab_size
    entries = []
    for i, text in enumerate(PROMPTS):
        # Plain tokenizer(text): no BOS for this GGUF (add_bos_token=False). Special-token
        # text such as <|im_start|> IS matched as one special token by HF's default call.
        ids = tokenizer(text, return_tensors="pt").input_ids[0].to(args.device)
        prefill = prefill_logits(model, ids)
        decode = decode_logits(model, ids)
        if prefill.shape != (ids.numel(), vocab) or decode.shape != prefill.shape:
            sys.exit(f"prompt {i}: unexpected logits shapes {prefill.shape} / {decode.shape}")
        (out_dir / f"prompt_{i}.ids.txt").write_text(" ".join(map(str, ids.tolist())) + "\n")
        write_f32(out_dir / f"prompt_{i}.prefill.f32", prefill)
        write_f32(out_dir / f"prompt_{i}.decode.f32", decode)
        diff = float(np.abs(prefill - decode).max())
        entries.append({
            "text": text,
            "n_tokens": int(ids.numel()),
            "vocab": int(vocab),
            "ids": f"prompt_{i}.ids.txt",
            "prefill": f"prompt_{i}.prefill.f32",
            "decode": f"prompt_{i}.decode.f32",
            "prefill_vs_decode_max_abs_diff": diff,
            "prefill_argmax": prefill.argmax(axis=1).tolist(),
        })
        print(f"prompt {i}: {ids.numel()} tokens, max |prefill - decode| = {diff:.3g}, "
              f"next token after prompt: {tokenizer.decode([int(prefill[-1].argmax())])!r}", flush=True)

    index = {
        "model": args.model,
        "dtype": "float32",
        "byte_order": "little",
        "layout": "row-major [n_tokens, vocab]",
        "bos_added": hf_model.bos_is_added(tokenizer),
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "attention": "eager",
        "prompts": entries,
    }
    tmp = out_dir / "index.json.part"
    tmp.write_text(json.dumps(index, indent=1, ensure_ascii=False))
    os.replace(tmp, out_dir / "index.json")
    print(f"wrote {len(entries)} prompts to {out_dir} in {time.time() - start:.1f}s")


if __name__ == "__main__":
    main()
