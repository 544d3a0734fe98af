"""Shared loader for the independent HF-transformers reference.

quarot's C++ engine is checked against this: the GGUF is dequantized by
transformers' own GGUF reader (not by our code), run in FP32 with eager
attention, fully offline.

    python tools/reference/hf_model.py --export   # writes the HF checkpoint dir
"""
import argparse
import os
import sys
import time
from pathlib import Path

# Offline before transformers is imported: the hub must never be contacted.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF dequantizer's progress bar floods logs

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

CACHE = Path(os.environ.get("QUAROT_CACHE", Path.home() / ".cache" / "quarot"))
DEFAULT_GGUF = CACHE / "models" / "smollm2-135m" / "SmolLM2-135M-Instruct.Q4_1.gguf"
REFERENCE_DIR = CACHE / "reference"
DEFAULT_EXPORT_DIR = REFERENCE_DIR / "smollm2-135m-hf"
DEFAULT_THREADS = 2  # the build machine has 2 cores shared by everybody


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=str(DEFAULT_GGUF),
                        help="a .gguf file or an HF checkpoint directory (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help="torch intra-op threads (default: %(default)s)")
    parser.add_argument("--device", default="cpu",
                        help="torch device; 'cuda' only for cross-checks, FP32 with TF32 off (default: %(default)s)")


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    # Inter-op pools are not used by a single forward; keep them from spawning extra cores.
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set once in this process


def _split(model_path: str):
    """(directory, gguf_file or None) for from_pretrained."""
    path = Path(model_path)
    if path.is_dir():
        return str(path), None
    if not path.is_file():
        sys.exit(f"{path}: no such model file or directory")
    if path.suffix != ".gguf":
        sys.exit(f"{path}: expected a .gguf file or an HF checkpoint directory")
    return str(path.parent), path.name


def load_tokenizer(model_path: str = str(DEFAULT_GGUF)):
    directory, gguf_file = _split(model_path)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    return AutoTokenizer.from_pretrained(directory, **kwargs)


def load_model(model_path: str = str(DEFAULT_GGUF)):
    """FP32, eager attention, eval mode. A GGUF is dequantized to FP32 on load."""
    directory, gguf_file = _split(model_path)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    hf_logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(
        directory, dtype=torch.float32, attn_implementation="eager", **kwargs)
    model.eval()
    return model


def load(model_path: str = str(DEFAULT_GGUF), threads: int = DEFAULT_THREADS, device: str = "cpu"):
    set_threads(threads)
    # TF32 would silently round matmul inputs to 10 mantissa bits on GPUs.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return load_model(model_path).to(device), load_tokenizer(model_path)


def bos_is_added(tokenizer) -> bool:
    """Whether tokenizer(text) prepends BOS (it does not for this GGUF: add_bos_token=False)."""
    probe = tokenizer("a").input_ids
    return tokenizer.bos_token_id is not None and len(probe) > 0 and probe[0] == tokenizer.bos_token_id


def export_checkpoint(model, tokenizer, out_dir: Path) -> Path:
    """Saves the dequantized model as a plain F32 HF checkpoint directory.

    The GGUF loader has already dequantized every tensor to F32 but still tags the model
    as "gguf"-quantized (and refuses to save it). The tag is dropped so the directory
    reads as an ordinary unquantized checkpoint (our loader and from_pretrained(out_dir)
    both see plain F32 tensors).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in model.parameters():
        if p.dtype != torch.float32:
            sys.exit(f"export: parameter of dtype {p.dtype} is not F32; refusing to write")
    model.hf_quantizer = None
    model.is_quantized = False
    config = model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = torch.float32
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _verify_export(model, tokenizer, out_dir: Path) -> float:
    """Max |logit difference| between the GGUF model and the reloaded export."""
    reloaded = load_model(str(out_dir))
    ids = tokenizer("The quick brown fox jumps over the lazy dog.", return_tensors="pt").input_ids
    with torch.inference_mode():
        a = model(ids).logits
        b = reloaded(ids).logits
    return float((a - b).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(parser)
    parser.add_argument("--export", action="store_true", help="write the HF checkpoint directory")
    parser.add_argument("--out", default=str(DEFAULT_EXPORT_DIR), help="export directory (default: %(default)s)")
    args = parser.parse_args()

    start = time.time()
    model, tokenizer = load(args.model, args.threads)
    print(f"loaded {args.model} in {time.time() - start:.1f}s; BOS added by tokenizer: {bos_is_added(tokenizer)}")
    print(model.config)
    if args.export:
        out = export_checkpoint(model, tokenizer, Path(args.out))
        for f in sorted(out.iterdir()):
            print(f"  {f} ({f.stat().st_size} bytes)")
        print(f"reloaded export: max |logit diff| vs GGUF model = {_verify_export(model, tokenizer, out):.3g}")


if __name__ == "__main__":
    main()
