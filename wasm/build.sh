#!/bin/sh
# Reproducible build of the kernels into DIR (default: wasm/):
#   aligner.wasm  from src/    (imports a shared memory: one index for all workers, and
#                               exports its stack pointer so that each worker instance
#                               runs on its own stack slot)
#   caller.wasm   from caller/ (imports a plain memory the host sizes per region, and
#                               Math.log10 / Math.pow, so genotypes match genotype.ts)
# Needs Debian's clang and lld (clang 14). Freestanding wasm32, no libc.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
out=$(cd "$out" && pwd)
CC=${CC:-clang}
# Relative source names and no debug info keep the output independent of the checkout path.
cd "$here/src"
$CC --target=wasm32 -std=c11 -O3 -msimd128 -mmutable-globals -matomics -mbulk-memory -nostdlib -ffreestanding \
  -fno-builtin-malloc -Wall -Wextra -Werror -Wno-unused-parameter \
  -Wl,--no-entry -Wl,--import-memory -Wl,--shared-memory -Wl,--max-memory=4294967296 \
  -Wl,--export=__stack_pointer -Wl,-z,stack-size=65536 -Wl,--strip-all \
  -o "$out/aligner.wasm" index.c seed.c chain.c align.c mapq.c pair.c kernel.c util.c
cd "$here/caller"
$CC --target=wasm32 -std=c11 -O3 -msimd128 -mbulk-memory -nostdlib -ffreestanding \
  -Wall -Wextra -Werror \
  -Wl,--no-entry -Wl,--import-memory -Wl,--max-memory=4294967296 \
  -Wl,--export=__heap_base -Wl,-z,stack-size=65536 -Wl,--strip-all \
  -o "$out/caller.wasm" pileup.c realign.c genotype.c
