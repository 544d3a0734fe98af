#!/usr/bin/env bash
# Regenerates every transformers/PyTorch reference fixture committed under tests/:
#   tests/reference/{logits,gguf_weights,tokenizer_hf,tokenizer_variants,wikitext2_test_ids,gptq_layer}.json
#   tests/tokenizer/data/smollm2_cases.json
# The C++ tests read only these files, so they run in CI without torch. Needs the
# reference venv (scripts/setup_reference.sh, PyPI), the default model
# (scripts/fetch_model.sh) and the WikiText-2 test text ($QUAROT_DATA or ../shared/data).
#   tools/reference/make_fixtures.sh        # ~2 min on 2 cores once the venv exists
# Review the diff: a changed fixture means transformers (or the model) changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
py=$(scripts/setup_reference.sh)
scripts/fetch_model.sh smollm2-135m >/dev/null
"$py" tools/reference/make_fixtures.py "$@"
"$py" tools/reference/gptq_reference.py
