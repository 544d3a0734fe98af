#!/usr/bin/env bash
# Creates (or updates) the Python environment that runs the independent
# HF-transformers reference in tools/reference/. Idempotent: an existing venv is
# reused and pip only installs what is missing. PyPI only.
#   scripts/setup_reference.sh            -> prints the venv's python path
# Env: QUAROT_CACHE (default ~/.cache/quarot), PYTHON (default python3).
set -euo pipefail
cache=${QUAROT_CACHE:-$HOME/.cache/quarot}
venv="$cache/venv"
python=${PYTHON:-python3}
# accelerate: transformers refuses to load a GGUF file without it.
packages=(torch transformers gguf tokenizers numpy safetensors sentencepiece accelerate)
modules=(torch transformers gguf tokenizers numpy safetensors sentencepiece accelerate)

if [ ! -x "$venv/bin/python" ]; then
  echo "setup_reference.sh: creating venv at $venv" >&2
  mkdir -p "$cache"
  "$python" -m venv "$venv"
fi

# Skip pip entirely when everything already imports: keeps reruns fast and offline.
if "$venv/bin/python" -c "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]" \
     "${modules[@]}" 2>/dev/null; then
  echo "setup_reference.sh: all packages present" >&2
else
  echo "setup_reference.sh: installing ${packages[*]} from PyPI" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet "${packages[@]}" >&2
fi
echo "$venv/bin/python"
