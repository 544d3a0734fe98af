#!/usr/bin/env python3
"""Reference check of quarot's tokenizer against HF transformers/tokenizers.

Loads the HF tokenizer that transformers builds from the GGUF (offline), and:
  * saves its tokenizer.json to <ref>/smollm2-tokenizer.json (used by C++ tests),
  * encodes the WHOLE WikiText-2 test file exactly as the perplexity protocol does
    (tokenizer(text), default add_special_tokens) and writes the ids to
    <ref>/smollm2-wikitext2-test-ids.txt (one id per line),
  * writes HF ids for a battery of tricky strings to tests/tokenizer/data/smollm2_cases.json
    (with --write-cases),
  * when quarot's ids exist (<ref>/quarot-wikitext2-test-ids.txt, written by the gtest
    TokenizerReference.WholeWikitextMatchesHf), compares them and prints the number of
    tokens, mismatches, and the first mismatch with context.

Run: $(scripts/setup_reference.sh) tools/reference/check_tokenizer.py [--write-cases]
(the committed fixtures come from tools/reference/make_fixtures.sh)
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("QUAROT_CACHE", Path.home() / ".cache" / "quarot"))
MODEL_DIR = CACHE / "models" / "smollm2-135m"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
REFERENCE_DIR = CACHE / "reference"
WIKITEXT = Path(os.environ.get("QUAROT_DATA", REPO.parent / "shared" / "data")) / "wikitext-2-raw-v1.test.txt"
CASES_PATH = REPO / "tests/tokenizer/data/smollm2_cases.json"

TRICKY_STRINGS = [
    "",
    " ",
    "Hello world",
    " Hello world",
    "Hello  world   with    spaces",
    "trailing spaces   ",
    "\n\nnewlines\n\n\nand\ttabs\t\t here\r\n",
    "I'm sure they'll say we've done it, isn't it? 'S 'LL 're",
    "Digits 1 12 123 1234 12345 3.14159 -42 1,000,000 2024-01-01",
    "ＡＢＣ full-width １２３ and superscript ² ³ ½ Ⅻ",
    "Unicode: café naïve résumé Ångström façade",
    "Emoji 😀👍🏽 🇫🇷 family 👨‍👩‍👧 and ❤️",
    "中文字符测试，日本語のテキスト、한국어 텍스트",
    "Ελληνικά Русский текст עברית العربية हिन्दी",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|><|endoftext|>text<|im_end|>",
    "a<|im_start|>b <|im_end|> c",
    "code: for (int i = 0; i < n; ++i) { x[i] += y[i] * 2; }  // comment",
    "def f(x):\n    return x ** 2\n\n\n    # indented",
    "URL https://example.com/path?q=1&r=2#frag and email a.b@c.de",
    " = Robert Boulter = \n Robert Boulter is an English film , television and theatre actor . \n",
    "Symbols !!! ??? ... --- ___ ~~~ @@@ ### $$$ %%% ^^^ &&& *** ((( ))) [[[ ]]]",
    "Mixed\u00a0nbsp\u2003em-space\u3000ideographic space",
    "ſ 's 'S ſ'ſ",
    "     leading five spaces",
]


def load_tokenizer():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(MODEL_DIR), gguf_file=GGUF_NAME)


def read_ids(path):
    with open(path) as f:
        return [int(line) for line in f if line.strip()]


def compare(hf_ids, ours, text_label):
    mismatches = sum(1 for a, b in zip(hf_ids, ours) if a != b) + abs(len(hf_ids) - len(ours))
    print(f"{text_label}: HF {len(hf_ids)} tokens, quarot {len(ours)} tokens, mismatches {mismatches}")
    for i, (a, b) in enumerate(zip(hf_ids, ours)):
        if a != b:
            print(f"  first mismatch at token {i}: HF {hf_ids[max(0, i-5):i+5]} vs quarot {ours[max(0, i-5):i+5]}")
            break
    else:
        if len(hf_ids) != len(ours):
            print(f"  lengths differ after {min(len(hf_ids), len(ours))} equal tokens")
    return mismatches


def write_pre_tokenizer_variants(tokenizer, text):
    """The SmolLM2 vocabulary under the other supported pre-tokenizers (Llama 3 and
    Qwen2 split regexes as transformers sets them for GGUF files, and the original
    SmolLM2 Digits + ByteLevel), with HF ids for the tricky strings and 200k chars of
    WikiText: <ref>/smollm2-variant-<name>.json, checked by TokenizerReference.PreTokenizerVariants."""
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
    texts = TRICKY_STRINGS + ["I'M SURE HE'S 'RE 'Ve", "x  \n\n\t y\r\n\r\nz", "1234567 89 ١٢٣٤", text[:200000]]
    for name, steps in variants.items():
        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        backend.pre_tokenizer = pre_tokenizers.Sequence(steps)
        cases = [{"text": t, "ids": backend.encode(t).ids} for t in texts]
        path = REFERENCE_DIR / f"smollm2-variant-{name}.json"
        path.write_text(json.dumps({"tokenizer": json.loads(backend.to_str()), "cases": cases}, ensure_ascii=False))
        print(f"saved {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-cases", action="store_true", help=f"write {CASES_PATH.relative_to(REPO)}")
    args = parser.parse_args()

    tokenizer = load_tokenizer()
    REFERENCE_DIR.mkdir(parents=True, exist_ok=True)
    json_path = REFERENCE_DIR / "smollm2-tokenizer.json"
    json_path.write_text(tokenizer.backend_tokenizer.to_str())
    print(f"saved {json_path}")
    adds_bos = tokenizer("a").input_ids[0] == tokenizer.bos_token_id
    print(f"tokenizer(text) adds BOS: {adds_bos} (bos {tokenizer.bos_token!r} = {tokenizer.bos_token_id}, "
          f"eos {tokenizer.eos_token!r} = {tokenizer.eos_token_id})")

    with open(WIKITEXT, encoding="utf-8") as f:  # same read as tools/reference/perplexity.py
        text = f.read()
    start = time.perf_counter()
    hf_ids = tokenizer(text).input_ids
    seconds = time.perf_counter() - start
    print(f"HF encoded {len(text)} chars ({len(text.encode())} bytes) into {len(hf_ids)} tokens in {seconds:.2f} s")
    ids_path = REFERENCE_DIR / "smollm2-wikitext2-test-ids.txt"
    ids_path.write_text("\n".join(map(str, hf_ids)) + "\n")
    print(f"saved {ids_path}")

    cases = [{"text": s, "ids": tokenizer(s).input_ids} for s in TRICKY_STRINGS]
    prefix = text[:20000]
    cases.append({"text": prefix, "ids": tokenizer(prefix).input_ids, "name": "wikitext2-test-first-20000-chars"})
    if args.write_cases:
        CASES_PATH.parent.mkdir(parents=True, exist_ok=True)
        CASES_PATH.write_text(json.dumps({"source": f"transformers AutoTokenizer({GGUF_NAME}), tokenizer(text).input_ids",
                                          "cases": cases}, ensure_ascii=False, indent=1) + "\n")
        print(f"wrote {CASES_PATH}")

    write_pre_tokenizer_variants(tokenizer, text)

    ours_path = REFERENCE_DIR / "quarot-wikitext2-test-ids.txt"
    if not ours_path.exists():
        print(f"{ours_path} absent: run test_tokenizer --gtest_filter='TokenizerReference.*' first to compare")
        return 0
    bad = compare(hf_ids, read_ids(ours_path), "whole WikiText-2 test file")
    ours_cases_path = REFERENCE_DIR / "quarot-cases-ids.json"
    if ours_cases_path.exists():
        ours_cases = json.loads(ours_cases_path.read_text())
        case_bad = 0
        for case, ours in zip(cases, ours_cases):
            if case["ids"] != ours:
                case_bad += 1
                print(f"  case mismatch {case['text'][:60]!r}: HF {case['ids'][:20]} vs quarot {ours[:20]}")
        print(f"tricky strings: {len(cases) - case_bad}/{len(cases)} identical")
        bad += case_bad
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
