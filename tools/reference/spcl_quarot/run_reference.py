#!/usr/bin/env python3
"""Run the ORIGINAL QuaRot reference (spcl/QuaRot, fake_quant/) on a local Llama-architecture
HF checkpoint (SmolLM2-135M-Instruct) and write its WikiText-2 perplexity as one JSON row.

Their code is imported unchanged from --ref-dir (a checkout of spcl/QuaRot's fake_quant/,
see README.md). Their own `main.main()` runs, driven by their own argparse (everything
after `--`); this launcher only monkeypatches what cannot work here, each patch below
says why:

  P1  `fast_hadamard_transform` (a CUDA extension) -> an exact pure-torch Walsh-Hadamard
      transform with the same signature/semantics (Sylvester order, times `scale`).
  P2  `datasets` / `accelerate` are not installed on the device: import stubs (their
      `data_utils.get_loaders` is replaced anyway (P4); `accelerate` is only used by
      `--distribute`, never here). A real `accelerate` is used when installed.
  P3  Model loading (`model_utils.get_model`): load --model-dir in --dtype (default FP32)
      with SDPA attention, and UNTIE lm_head from embed_tokens (SmolLM2 ties them; their
      fuse/rotate code writes `.weight.data` of both modules separately, which on a tied
      Parameter would apply each transform twice). `model.seqlen = 2048` as theirs.
      --model (their arg) is only a label containing "llama" for their name-based dispatch.
  P4  Data (`data_utils.get_loaders`): test = the local WikiText-2 test text tokenized in
      one call (their `tokenizer("\\n\\n".join(test['text']))`); calibration = their
      seeded random-window sampling over the local WikiText-2 *validation* text.
  P5  transformers 5.x glue: their layer-by-layer loops call
      `layer(x, attention_mask=..., position_ids=...)[0]` (transformers 4.3x convention:
      RoPE computed inside attention, layers return tuples). In 5.x the layer needs
      `position_embeddings` and returns a tensor, so a wrapper computes cos/sin with the
      model's own rotary module from position_ids and returns `(out,)` -- only for calls
      that come without position_embeddings (i.e. theirs, never LlamaModel.forward).
  P6  9 attention heads: their o_proj online transform needs a Hadamard matrix of order
      num_heads (`get_hadK(9)` asserts). Fallback (as in our C++ project): a seeded
      random orthogonal 9x9 M across heads, H_64 within heads (their v_proj fusion,
      unchanged). Online: `get_hadK(9)` returns (3*M, 9) so their ActQuantWrapper applies
      (had_K @ x_heads)/sqrt(9) = M across heads; offline: o_proj's input is fused with the
      same M (x) H_64 / 8 via their own `matmul_hadU_cuda(W, 3*M, 9)` instead of their
      full H_576. Only active when num_heads has no Hadamard matrix in their table.
  P7  --device: `utils.DEV` (hardcoded cuda:0 when available) becomes configurable; on a
      machine without CUDA, `Tensor.cuda()` maps to DEV and `torch.cuda.synchronize()` is a
      no-op (their code calls both unconditionally).
  Debug only (never in device rows): --max-windows (evaluate the first N windows),
  --max-layers (truncate the network), --diag-* switches (documented in README.md).

Example (local CPU smoke test):
  python tools/reference/spcl_quarot/run_reference.py --device cpu --max-windows 2 \\
      --model-dir ~/.cache/quarot/reference/smollm2-135m-hf --row fp --out-json /tmp/fp.json --
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time
import types
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from json_out import write_json_atomic  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_REF_DIR = REPO_ROOT / ".ref" / "spcl_quarot" / "fake_quant"
DEFAULT_MODEL_DIR = Path.home() / ".cache" / "quarot" / "reference" / "smollm2-135m-hf"
DEFAULT_TEST = "/work/shared/data/wikitext-2-raw-v1.test.txt"
DEFAULT_CALIB = "/work/shared/data/wikitext-2-v1.valid.tokenized.txt"
MODEL_LABEL = "llama-arch/SmolLM2-135M-Instruct"  # their dispatch wants 'llama' in --model
# Per-file commits of the reference copy (see README.md).
REF_COMMITS = {
    "main.py": "45f58d6aa0b4228c02c28d6eed58c2338bbfbb21",
    "eval_utils.py": "45f58d6aa0b4228c02c28d6eed58c2338bbfbb21",
    "model_utils.py": "45f58d6aa0b4228c02c28d6eed58c2338bbfbb21",
    "rotation_utils.py": "45f58d6aa0b4228c02c28d6eed58c2338bbfbb21",
    "hadamard_utils.py": "45f58d6aa0b4228c02c28d6eed58c2338bbfbb21 (partial: code, had12, had36)",
    "utils.py": "c74f8600b85898a01631cd14467b6ae732d0c127",
    "data_utils.py": "f06f680b72824e80aac2034690d232dc2bf13fed",
    "gptq_utils.py": "f06f680b72824e80aac2034690d232dc2bf13fed",
    "quant_utils.py": "f06f680b72824e80aac2034690d232dc2bf13fed",
    "monkeypatch.py": "f06f680b72824e80aac2034690d232dc2bf13fed",
}


def log(msg):
    print(f"[spcl_quarot] {msg}", flush=True)


# ----------------------------------------------------------------------------- P1
def hadamard_transform(x, scale=1.0):
    """Exact equivalent of fast_hadamard_transform.hadamard_transform (Dao-AILab):
    out = (x @ H_n^T) * scale along the last dim, H_n the Sylvester Hadamard matrix
    H[i][j] = (-1)^popcount(i & j) (natural order); n must be a power of two here (the
    CUDA kernel zero-pads other sizes; QuaRot only calls it with powers of two).
    Computed in float32 (float64 for float64 input) and returned in x's dtype."""
    n = x.shape[-1]
    if n & (n - 1) != 0 or n == 0:
        raise ValueError(f"hadamard_transform shim: dim {n} is not a power of two")
    dtype = x.dtype
    work = torch.float64 if dtype == torch.float64 else torch.float32
    y = x.to(work).reshape(-1, n)
    h = 1
    while h < n:
        y = y.view(-1, n // (2 * h), 2, h)
        a, b = y[:, :, 0, :], y[:, :, 1, :]
        y = torch.stack((a + b, a - b), dim=2)
        h *= 2
    y = y.reshape(x.shape)
    if isinstance(scale, torch.Tensor):
        scale = float(scale)
    return (y * scale).to(dtype)


def install_import_shims():
    fht = types.ModuleType("fast_hadamard_transform")
    fht.hadamard_transform = hadamard_transform
    fht.__doc__ = "pure-torch shim installed by tools/reference/spcl_quarot/run_reference.py"
    sys.modules["fast_hadamard_transform"] = fht

    # ---- P2: `datasets` (their data_utils imports it at module level; P4 replaces its use)
    if "datasets" not in sys.modules:
        ds = types.ModuleType("datasets")

        def _no_datasets(*a, **k):
            raise RuntimeError("datasets.load_dataset is not available in this harness; "
                               "data comes from local files (run_reference.py P4)")
        ds.load_dataset = _no_datasets
        sys.modules["datasets"] = ds
    # `accelerate` (their utils imports it at module level; only distribute_model uses it)
    try:
        import accelerate  # noqa: F401
        import accelerate.utils  # noqa: F401
    except ImportError:
        acc = types.ModuleType("accelerate")
        accu = types.ModuleType("accelerate.utils")

        def _no_acc(*a, **k):
            raise RuntimeError("accelerate is not installed (only needed for --distribute)")
        acc.dispatch_model = acc.infer_auto_device_map = _no_acc
        accu.get_balanced_memory = _no_acc
        acc.utils = accu
        sys.modules["accelerate"] = acc
        sys.modules["accelerate.utils"] = accu


# ----------------------------------------------------------------------------- P4
class TokenIds:
    """The object their evaluator reads (`.input_ids`, shape (1, n))."""

    def __init__(self, input_ids):
        self.input_ids = input_ids


def hf_rows_joined(text):
    """Rebuild the HF `wikitext` rows from a line file and join them like their loader:
    non-blank lines keep their trailing '\\n', blank lines become '' (HF's layout), joined
    with '\\n\\n'."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    rows = ["" if line.strip() == "" else line + "\n" for line in lines]
    return "\n\n".join(rows)


def make_loaders(opts, state):
    from transformers import AutoTokenizer
    tok_cache = {}

    def tokenizer():
        if "t" not in tok_cache:
            tok_cache["t"] = AutoTokenizer.from_pretrained(str(opts.model_dir))
        return tok_cache["t"]

    def get_loaders(name, nsamples=128, seed=0, seqlen=2048, model="", hf_token=None, eval_mode=False):
        if name != "wikitext2":
            raise ValueError(f"harness: only wikitext2 is available locally, got {name}")
        tok = tokenizer()
        if eval_mode:
            text = Path(opts.test_text).read_text(encoding="utf-8")
            ids = tok(text, return_tensors="pt").input_ids
            state["test_tokens"] = int(ids.numel())
            if opts.max_windows is not None:
                ids = ids[:, :opts.max_windows * seqlen]
            log(f"test text {opts.test_text}: {len(text)} chars -> {state['test_tokens']} tokens, "
                f"{ids.numel() // seqlen} windows of {seqlen} evaluated; first ids {ids[0, :8].tolist()}")
            return TokenIds(ids)
        raw = Path(opts.calib_text).read_text(encoding="utf-8")
        text = hf_rows_joined(raw) if opts.calib_format == "hf-rows" else raw
        trainenc = tok(text, return_tensors="pt")
        n = trainenc.input_ids.shape[1]
        # Their sampling loop (data_utils.get_wikitext2, train branch), unchanged.
        import random
        random.seed(seed)
        trainloader = []
        for _ in range(nsamples):
            i = random.randint(0, trainenc.input_ids.shape[1] - seqlen - 1)
            j = i + seqlen
            inp = trainenc.input_ids[:, i:j]
            tar = inp.clone()
            tar[:, :-1] = -100
            trainloader.append((inp, tar))
        state["calib"] = {"text": opts.calib_text, "format": opts.calib_format, "tokens": int(n),
                          "nsamples": nsamples, "seqlen": seqlen, "seed": seed}
        log(f"calibration: {nsamples} windows of {seqlen} from {opts.calib_text} "
            f"({opts.calib_format}, {n} tokens), seed {seed}")
        return trainloader

    return get_loaders


# ----------------------------------------------------------------------------- P3
def make_get_model(opts, state, utils_mod):
    from transformers import AutoModelForCausalLM

    def get_model(model_name, hf_token=None):
        dtype = {"auto": "auto", "float32": torch.float32, "float16": torch.float16,
                 "bfloat16": torch.bfloat16}[opts.dtype]
        model = AutoModelForCausalLM.from_pretrained(str(opts.model_dir), dtype=dtype,
                                                     attn_implementation="sdpa")
        cfg = model.config
        tied = model.lm_head.weight is model.model.embed_tokens.weight
        if tied:
            model.lm_head.weight = torch.nn.Parameter(model.model.embed_tokens.weight.detach().clone())
            cfg.tie_word_embeddings = False
        if opts.max_layers is not None:
            model.model.layers = model.model.layers[:opts.max_layers]
            cfg.num_hidden_layers = opts.max_layers
        if opts.diag_rmsn_eps is not None:
            import model_utils
            model_utils.RMSN.__init__.__defaults__ = (opts.diag_rmsn_eps,)
        if opts.diag_no_embed_center:
            install_no_embed_center()
        model.seqlen = 2048  # as their get_llama_like
        # P5: transformers-5 layer calling convention for their per-layer loops.
        install_layer_call_glue(model)
        state["model"] = {
            "dir": str(opts.model_dir), "class": type(model).__name__,
            "dtype": str(next(model.parameters()).dtype), "untied_lm_head": tied,
            "layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size,
            "heads": cfg.num_attention_heads, "kv_heads": cfg.num_key_value_heads,
            "ffn": cfg.intermediate_size, "rms_norm_eps": cfg.rms_norm_eps,
        }
        log(f"model {opts.model_dir}: {state['model']}")
        return model

    return get_model


# ----------------------------------------------------------------------------- P5
def install_layer_call_glue(model):
    from transformers.models.llama import modeling_llama
    cls = modeling_llama.LlamaDecoderLayer
    if getattr(cls.forward, "_spcl_glue", False):
        return
    orig = cls.forward
    rotary = model.model.rotary_emb

    def forward(self, hidden_states, *args, **kwargs):
        legacy = kwargs.get("position_embeddings") is None
        if legacy:
            pos = kwargs.get("position_ids")
            if pos is None:
                pos = torch.arange(hidden_states.shape[1], device=hidden_states.device).unsqueeze(0)
            kwargs["position_embeddings"] = rotary(hidden_states, pos.to(hidden_states.device))
        out = orig(self, hidden_states, *args, **kwargs)
        if legacy and isinstance(out, torch.Tensor):
            return (out,)
        return out

    forward._spcl_glue = True
    cls.forward = forward


# ----------------------------------------------------------------------------- P6
def install_heads_fallback(opts, state, hadamard_utils, rotation_utils, num_heads, head_dim):
    orig_get_hadK = hadamard_utils.get_hadK
    try:
        orig_get_hadK(num_heads)
        state["heads_fallback"] = None
        return  # their table covers num_heads: nothing to patch
    except AssertionError:
        pass
    g = torch.Generator().manual_seed(opts.heads_seed)
    a = torch.randn(num_heads, num_heads, generator=g, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q *= torch.sign(torch.diag(r)).unsqueeze(0)  # their random_orthogonal_matrix recipe
    M = q
    err = (M @ M.T - torch.eye(num_heads, dtype=torch.float64)).abs().max().item()
    hadK = M * math.sqrt(num_heads)  # their code divides had_K products by sqrt(K)

    def get_hadK(n, transpose=False):
        if n == num_heads:
            return (hadK.T if transpose else hadK).clone(), num_heads
        return orig_get_hadK(n, transpose)

    def rotate_ov_proj(layer, model_type, head_num, head_dim_):
        # v_proj: their fusion, unchanged (H_64 on each head's output).
        hadamard_utils.apply_exact_had_to_linear(layer.self_attn.v_proj, had_dim=head_dim_, output=True)
        # o_proj input: (M (x) H_64)/8 per row, i.e. their matmul_hadU_cuda with hadK = 3*M, K = 9
        # (FWHT over each head's 64 entries scaled by 1/sqrt(576), then 3*M across heads).
        o_proj = layer.self_attn.o_proj
        W = o_proj.weight.data
        dtype, dev = W.dtype, W.device
        W_ = W.float().to(opts.torch_device)
        W_ = hadamard_utils.matmul_hadU_cuda(W_, hadK.to(W_.device), num_heads)
        o_proj.weight.data = W_.to(device=dev, dtype=dtype)

    hadamard_utils.get_hadK = get_hadK
    rotation_utils.rotate_ov_proj = rotate_ov_proj
    state["heads_fallback"] = {
        "num_heads": num_heads, "head_dim": head_dim, "seed": opts.heads_seed,
        "construction": "QR of a seeded N(0,1) matrix, sign-fixed (their random_orthogonal_matrix)",
        "orthogonality_err": err, "M": M.tolist(),
    }
    log(f"num_heads={num_heads} has no Hadamard matrix in their table: with --rotate, the o_proj "
        f"transform is a seeded random orthogonal M ({num_heads}x{num_heads}, seed {opts.heads_seed}, "
        f"|MM^T-I|max {err:.1e}) across heads (x) H_{head_dim}, online and in the o_proj fusion")


# ----------------------------------------------------------------------------- diagnostics
def install_no_embed_center():
    """DIAGNOSTIC ONLY: skip their embedding mean subtraction in fuse_layer_norms (which is
    not an invariance for RMSNorm models) to measure the pure rotation invariance."""
    import model_utils
    orig = model_utils.get_embeddings
    import inspect

    def get_embeddings(model, model_type):
        caller = inspect.stack()[1].function
        if caller == "fuse_layer_norms":
            return []
        return orig(model, model_type)
    model_utils.get_embeddings = get_embeddings


# ----------------------------------------------------------------------------- P7
def configure_device(opts, utils_mod, rotation_utils):
    dev = torch.device(opts.device if opts.device != "cuda" else "cuda:0")
    opts.torch_device = dev
    utils_mod.DEV = dev
    rotation_utils.get_orthogonal_matrix.__defaults__ = (dev,)
    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *a, **k: self.to(dev)
        torch.cuda.synchronize = lambda *a, **k: None
        torch.cuda.empty_cache = lambda *a, **k: None
    return dev


def main():
    if "--" in sys.argv:
        cut = sys.argv.index("--")
        ours, theirs = sys.argv[1:cut], sys.argv[cut + 1:]
    else:
        ours, theirs = sys.argv[1:], []
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref-dir", type=Path, default=DEFAULT_REF_DIR,
                   help="spcl/QuaRot fake_quant/ directory (default: %(default)s)")
    p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="HF checkpoint dir (default: %(default)s)")
    p.add_argument("--test-text", default=DEFAULT_TEST, help="WikiText-2 raw test text (default: %(default)s)")
    p.add_argument("--calib-text", default=DEFAULT_CALIB, help="calibration text, WikiText-2 validation (default: %(default)s)")
    p.add_argument("--calib-format", choices=["hf-rows", "raw"], default="hf-rows",
                   help="hf-rows: rebuild HF rows and '\\n\\n'-join them like their loader (default); raw: file as is")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["float32", "auto", "float16", "bfloat16"], default="float32",
                   help="model dtype (theirs: torch_dtype='auto'); default float32 (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--heads-seed", type=int, default=0, help="seed of the across-heads orthogonal M (P6)")
    p.add_argument("--row", default="row", help="row name written to the JSON")
    p.add_argument("--out-json", default=None, help="write {row, ppl, windows, seconds, args, ...} here")
    p.add_argument("--max-windows", type=int, default=None, help="DEBUG: evaluate only the first N windows")
    p.add_argument("--max-layers", type=int, default=None, help="DEBUG: keep only the first N decoder layers")
    p.add_argument("--diag-no-embed-center", action="store_true",
                   help="DIAGNOSTIC: skip their embedding mean-centering in fuse_layer_norms")
    p.add_argument("--diag-exact-loss", action="store_true",
                   help="DIAGNOSTIC: their CrossEntropyLoss on float64 logits (their fp32 loss over "
                        "permuted (N, C, L) logits loses ~1e-4 in NLL on CPU)")
    p.add_argument("--diag-rmsn-eps", type=float, default=None,
                   help="DIAGNOSTIC: eps of their RMSN (theirs: 1e-6; model: rms_norm_eps)")
    opts = p.parse_args(ours)
    t0 = time.time()
    torch.set_num_threads(opts.threads)

    ref_dir = opts.ref_dir.resolve()
    if not (ref_dir / "main.py").is_file():
        sys.exit(f"{ref_dir}: not a spcl/QuaRot fake_quant directory (see README.md)")
    install_import_shims()
    sys.path.insert(0, str(ref_dir))
    import utils as q_utils  # their modules, unchanged
    import model_utils
    import data_utils
    import eval_utils
    import hadamard_utils
    import rotation_utils
    import main as q_main
    import transformers

    state = {}
    dev = configure_device(opts, q_utils, rotation_utils)
    model_utils.get_model = make_get_model(opts, state, q_utils)
    data_utils.get_loaders = make_loaders(opts, state)

    from transformers import AutoConfig
    cfg = AutoConfig.from_pretrained(str(opts.model_dir))
    install_heads_fallback(opts, state, hadamard_utils, rotation_utils,
                           cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads)

    captured = {}
    orig_parser_gen = q_utils.parser_gen

    def parser_gen():
        args = orig_parser_gen()
        captured["args"] = args
        return args
    q_utils.parser_gen = parser_gen

    orig_evaluator = eval_utils.evaluator

    def evaluator(model, testenc, dev_, args):
        t = time.time()
        if opts.diag_exact_loss:
            orig_ce = torch.nn.CrossEntropyLoss

            class CE64(orig_ce):  # their loss, on float64 logits
                def forward(self, inp, target):
                    return super().forward(inp.double(), target)
            torch.nn.CrossEntropyLoss = CE64
            try:
                ppl = orig_evaluator(model, testenc, dev_, args)
            finally:
                torch.nn.CrossEntropyLoss = orig_ce
        else:
            ppl = orig_evaluator(model, testenc, dev_, args)
        captured["eval_seconds"] = time.time() - t
        captured["ppl"] = ppl
        captured["windows"] = testenc.input_ids.numel() // model.seqlen
        return ppl
    eval_utils.evaluator = evaluator

    if not any(a == "--model" or a.startswith("--model=") for a in theirs):
        theirs = ["--model", MODEL_LABEL] + theirs
    if not any(a == "--save_name" or a.startswith("--save_name=") for a in theirs):
        theirs += ["--save_name", f"{opts.row}_{time.strftime('%Y%m%d_%H%M%S')}"]
    sys.argv = [str(ref_dir / "main.py")] + theirs
    log(f"row {opts.row}: device {dev}, torch {torch.__version__}, transformers {transformers.__version__}; "
        f"their args: {' '.join(theirs)}")
    q_main.main()
    seconds = time.time() - t0
    if "ppl" not in captured:
        sys.exit("their main() returned without evaluating")
    out = {
        "row": opts.row,
        "ppl": captured["ppl"],
        "windows": captured["windows"],
        "seconds": round(seconds, 2),
        "eval_seconds": round(captured["eval_seconds"], 2),
        "args": {k: v for k, v in vars(captured["args"]).items()},
        "harness": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()
                    if k != "torch_device"},
        "test_tokens": state.get("test_tokens"),
        "calibration": state.get("calib"),
        "model": state.get("model"),
        "heads_fallback": state.get("heads_fallback"),
        "device": str(dev) + (f" ({torch.cuda.get_device_name(0)})" if dev.type == "cuda" else ""),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "reference": {"repo": "https://github.com/spcl/QuaRot", "dir": str(ref_dir),
                      "commits_of_the_.ref_copy": REF_COMMITS,
                      "sha256": {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
                                 for f in sorted(ref_dir.glob("*.py"))}},
    }
    log(f"row {opts.row}: ppl {out['ppl']:.6f} over {out['windows']} windows, {seconds:.1f}s")
    if opts.out_json:
        write_json_atomic(opts.out_json, out)
        log(f"wrote {opts.out_json}")


if __name__ == "__main__":
    main()
