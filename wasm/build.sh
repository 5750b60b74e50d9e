#!/bin/sh
# Reproducible build of the aligner kernel: wasm/aligner.wasm (or $1 if given).
# Needs Debian's clang and lld (clang 14). Freestanding wasm32, no libc: the module
# imports a shared memory (one index for all workers) and exports its stack pointer
# so that each worker instance can run on its own stack slot.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/aligner.wasm}
CC=${CC:-clang}
cd "$here/src"
# Relative source names and no debug info keep the output independent of the checkout path.
$CC --target=wasm32 -std=c11 -O3 -msimd128 -mmutable-globals -matomics -mbulk-memory -nostdlib -ffreestanding \
  -fno-builtin-malloc -Wall -Wextra -Werror -Wno-unused-parameter \
  -Wl,--no-entry -Wl,--import-memory -Wl,--shared-memory -Wl,--max-memory=4294967296 \
  -Wl,--export=__stack_pointer -Wl,-z,stack-size=65536 -Wl,--strip-all \
  -o "$out" index.c seed.c chain.c align.c mapq.c pair.c kernel.c util.c
