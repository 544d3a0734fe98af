#!/usr/bin/env bash
# Registers, stack (spills) and SASS instruction counts of the CUDA kernels in one
# source file at one or more commits, compiled here (no GPU) with the build's nvcc flags:
#   tools/sass_resources.sh FILE.cu KERNEL_REGEX REV [REV ...]
# e.g. tools/sass_resources.sh src/kernels/cuda/int_gemm_rs.cu 'RsConfigILi256ELi2ELi4E' main
# (REV "worktree" compiles the working tree's file). cuobjdump: the CUDA toolkit's, or the
# PyPI wheel nvidia-cuda-cuobjdump (CUOBJDUMP=path).
set -euo pipefail
file=$1 pattern=$2
shift 2
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
cuobjdump=${CUOBJDUMP:-$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)}
top=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for rev in "$@"; do
  if [[ $rev == worktree ]]; then
    src=$top/src
  else
    mkdir -p "$tmp/$rev" && git -C "$top" archive "$rev" src | tar -x -C "$tmp/$rev"
    src=$tmp/$rev/src
  fi
  obj=$tmp/obj_${rev//\//_}.o
  "$nvcc" -I"$src" -O3 -DNDEBUG -gencode=arch=compute_90a,code=sm_90a -std=c++17 -x cu -c "$src/${file#src/}" -o "$obj"
  if [[ $rev == worktree ]]; then
    echo "== the working tree (on $(git -C "$top" rev-parse --short HEAD)): $file"
  else
    echo "== $rev ($(git -C "$top" rev-parse --short "$rev")): $file"
  fi
  for f in $("$cuobjdump" -elf "$obj" | grep -oE "_Z[A-Za-z0-9_]*($pattern)[A-Za-z0-9_]*" | sort -u); do
    res=$("$cuobjdump" --dump-resource-usage "$obj" | grep -A1 "Function $f:" | grep -oE "REG:[0-9]+ STACK:[0-9]+")
    n=$("$cuobjdump" -sass -fun "$f" "$obj" | grep -cE '^\s+/\*[0-9a-f]{4,6}\*/')
    echo "$res SASS:$n $f"
  done
done
