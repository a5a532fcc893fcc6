#!/usr/bin/env bash
# Builds native/ssimulacra2.wasm from native/ssimulacra2.c (needs Debian's clang-14 and lld-14:
# apt-get install -y clang-14 lld-14). The .wasm is committed, so `npm ci && npm start` needs no
# compiler; native/ssimulacra2.wasm.source-sha256 records which source it was built from, and a
# test fails when the C changed without a rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/lib/llvm-14/bin:$PATH" # clang-14 finds wasm-ld there
clang-14 --target=wasm32 -O3 -msimd128 -ffp-contract=off -nostdlib -fno-builtin \
  -Wl,--no-entry -Wl,--export=__heap_base -Wl,--export=set_gaussian -Wl,--export=blur \
  -Wl,--export=product -Wl,--export=downsample -Wl,--export=to_xyb -Wl,--export=error_maps \
  -Wl,-z,stack-size=65536 -o native/ssimulacra2.wasm native/ssimulacra2.c
sha256sum native/ssimulacra2.c | cut -d' ' -f1 > native/ssimulacra2.wasm.source-sha256
echo "built native/ssimulacra2.wasm ($(stat -c %s native/ssimulacra2.wasm) bytes)"
