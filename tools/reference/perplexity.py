"""Reference perplexity with HF transformers (FP32, eager attention).

Two protocols, reproduced step for step (see docs/reference.md):

  gptq      (default) the GPTQ/QuaRot WikiText-2 evaluation: the whole text is
            tokenized in one call exactly as HF does it (no BOS for this model: its
            GGUF says add_bos_token=False), cut into numel // seqlen non-overlapping
            windows (the tail is dropped), each window scored on its own (no cache
            carried over); window loss = mean CE over its seqlen-1 next-token
            predictions; ppl = exp(sum(loss_i * seqlen) / (nsamples * seqlen)),
            i.e. exp of the mean of the per-window mean NLLs.
  llama.cpp llama.cpp's `llama-perplexity`: file read with one trailing '\\n' dropped,
            tokenized with BOS only if the vocab says add_bos; chunks of n_ctx
            (default 512), the first token of each chunk replaced by BOS when add_bos;
            only the second half is scored: logits at positions n_ctx/2 .. n_ctx-2
            predict the next token (n_ctx/2 - 1 tokens per chunk);
            ppl = exp(total NLL / scored tokens).

    python tools/reference/perplexity.py --max-chunks 4 --json out.json
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hf_model  # noqa: E402  (sets offline env before transformers loads)
from json_out import write_json_atomic  # noqa: E402
import torch  # noqa: E402

DEFAULT_TEXT = str(Path(os.environ.get("QUAROT_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
                   / "wikitext-2-raw-v1.test.txt")


def read_text(path: str, protocol: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        sys.exit(f"{path}: cannot read text: {e.strerror}")
    except UnicodeDecodeError as e:
        sys.exit(f"{path}: not valid UTF-8 at byte {e.start}")
    if protocol == "llama.cpp" and text.endswith("\n"):
        text = text[:-1]  # llama.cpp's -f reader drops one trailing newline
    return text


def tokenize(tokenizer, text: str, protocol: str, bos_mode: str):
    """Token ids (1-D LongTensor) and whether a BOS is at the front of each window/chunk."""
    # Exactly how HF encodes the whole string: tokenizer(text) with its default
    # add_special_tokens=True (which, for this GGUF, adds nothing).
    ids = tokenizer(text, return_tensors="pt").input_ids[0]
    hf_adds_bos = hf_model.bos_is_added(tokenizer)
    if protocol == "gptq":
        return ids, hf_adds_bos
    # llama.cpp: add_bos comes from the vocab (tokenizer.ggml.add_bos_token), which is
    # what the HF tokenizer loaded from the same GGUF also follows.
    add_bos = {"auto": hf_adds_bos, "always": True, "never": False}[bos_mode]
    if add_bos and not hf_adds_bos:
        ids = torch.cat([torch.tensor([tokenizer.bos_token_id]), ids])
    if not add_bos and hf_adds_bos:
        ids = ids[1:]
    return ids, add_bos


@torch.inference_mode()
def gptq_perplexity(model, ids, seqlen, max_chunks, log):
    nsamples = ids.numel() // seqlen
    if max_chunks is not None:
        nsamples = min(nsamples, max_chunks)
    if nsamples == 0:
        sys.exit(f"text has {ids.numel()} tokens, fewer than one window of {seqlen}")
    loss_fn = torch.nn.CrossEntropyLoss()
    nlls = []
    for i in range(nsamples):
        window = ids[i * seqlen:(i + 1) * seqlen].unsqueeze(0)
        logits = model(window).logits
        shift_logits = logits[:, :-1, :]
        shift_labels = window[:, 1:]
        loss = loss_fn(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1))
        nlls.append(loss.float().item() * seqlen)  # as GPTQ: loss * seqlen
        running = math.exp(math.fsum(nlls) / (len(nlls) * seqlen))
        log(f"[{i + 1}/{nsamples}] window nll {loss.item():.6f} running ppl {running:.6f}")
    total = math.fsum(nlls) / (nsamples * seqlen)
    return {
        "ppl": math.exp(total),
        "nll": total,
        "chunks": nsamples,
        "scored_tokens": nsamples * (seqlen - 1),
        "chunk_nll": [n / seqlen for n in nlls],
    }


@torch.inference_mode()
def llamacpp_perplexity(model, ids, n_ctx, max_chunks, add_bos, bos_id, log):
    if ids.numel() < 2 * n_ctx:
        sys.exit(f"need at least {2 * n_ctx} tokens for n_ctx={n_ctx}, have {ids.numel()}")
    n_chunk = ids.numel() // n_ctx
    if max_chunks is not None:
        n_chunk = min(n_chunk, max_chunks)
    first = n_ctx // 2
    total_nll = 0.0
    count = 0
    chunk_nll = []
    for i in range(n_chunk):
        chunk = ids[i * n_ctx:(i + 1) * n_ctx].clone()
        if add_bos:
            chunk[0] = bos_id
        logits = model(chunk.unsqueeze(0)).logits[0]
        # Rows first .. n_ctx-2 predict the ORIGINAL tokens first+1 .. n_ctx-1 (the
        # BOS substitution only touches position 0, never a target).
        logprobs = torch.log_softmax(logits[first:n_ctx - 1].float(), dim=-1)
        targets = ids[i * n_ctx + first + 1:(i + 1) * n_ctx]
        nll = -logprobs.gather(1, targets.unsqueeze(1)).squeeze(1).double()
        total_nll += float(nll.sum())
        count += nll.numel()
        chunk_nll.append(float(nll.mean()))
        log(f"[{i + 1}/{n_chunk}] chunk nll {chunk_nll[-1]:.6f} running ppl {math.exp(total_nll / count):.6f}")
    return {
        "ppl": math.exp(total_nll / count),
        "nll": total_nll / count,
        "chunks": n_chunk,
        "scored_tokens": count,
        "chunk_nll": chunk_nll,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    hf_model.add_model_args(parser)
    parser.add_argument("--text", default=DEFAULT_TEXT, help="evaluation text (default: %(default)s)")
    parser.add_argument("--protocol", choices=["gptq", "llama.cpp"], default="gptq")
    parser.add_argument("--seqlen", "--ctx", type=int, default=None,
                        help="window length (default: 2048 for gptq, 512 for llama.cpp)")
    parser.add_argument("--max-chunks", type=int, default=None, help="score at most this many windows")
    parser.add_argument("--bos", choices=["auto", "always", "never"], default="auto",
                        help="llama.cpp protocol only: add_bos as the GGUF says (auto), or forced")
    parser.add_argument("--json", default=None, help="write the result here")
    args = parser.parse_args()
    seqlen = args.seqlen or (2048 if args.protocol == "gptq" else 512)
    if seqlen < 2 or (args.protocol == "llama.cpp" and seqlen < 4):
        sys.exit(f"--seqlen {seqlen} is too small")
    if args.max_chunks is not None and args.max_chunks < 1:
        sys.exit("--max-chunks must be >= 1")

    def log(msg):
        print(msg, flush=True)

    start = time.time()
    model, tokenizer = hf_model.load(args.model, args.threads, args.device)
    text = read_text(args.text, args.protocol)
    ids, bos = tokenize(tokenizer, text, args.protocol, args.bos)
    ids = ids.to(args.device)
    log(f"model {args.model}; text {args.text}: {len(text)} chars -> {ids.numel()} tokens; "
        f"BOS {'added' if bos else 'not added'}; first ids {ids[:8].tolist()}; "
        f"threads {torch.get_num_threads()}; setup {time.time() - start:.1f}s")

    eval_start = time.time()
    if args.protocol == "gptq":
        result = gptq_perplexity(model, ids, seqlen, args.max_chunks, log)
    else:
        result = llamacpp_perplexity(model, ids, seqlen, args.max_chunks, bos, tokenizer.bos_token_id, log)
    seconds = time.time() - eval_start

    out = {
        "ppl": result["ppl"],
        "nll": result["nll"],
        "tokens": ids.numel(),
        "chunks": result["chunks"],
        "seqlen": seqlen,
        "seconds": round(seconds, 2),
        "protocol": args.protocol,
        "bos_added": bos,
        "bos_token_id": tokenizer.bos_token_id,
        "scored_tokens": result["scored_tokens"],
        "model": args.model,
        "text": args.text,
        "text_sha256": hashlib.sha256(Path(args.text).read_bytes()).hexdigest(),
        "threads": torch.get_num_threads(),
        "device": args.device,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "chunk_nll": result["chunk_nll"],
    }
    log(f"{args.protocol} ppl = {out['ppl']:.6f} (nll {out['nll']:.6f}, {out['chunks']} chunks of {seqlen}, "
        f"{out['tokens']} tokens, {seconds:.1f}s)")
    if args.json:
        write_json_atomic(args.json, out)
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
