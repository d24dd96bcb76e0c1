#!/usr/bin/env bash
# Cross-builds fut for AArch64 and runs test/cross/fiber_check.c under
# qemu-user: the fibers' AArch64 context switch (lib/util/fctx.c) runs in
# CI on this x86-64 machine.  Needs gcc-aarch64-linux-gnu and qemu-user
# (Debian packages; .ci/run installs them).  Usage: ci/cross.sh [build dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/cross-aarch64}
cmake -S . -B "$build" -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
    -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_BUILD_TYPE=Release \
    -DFUT_BUILD_TESTS=OFF -DFUT_BUILD_BENCH=OFF -DFUT_BUILD_EXAMPLES=OFF \
    -DFUT_WERROR=ON >/dev/null
cmake --build "$build" -j2 --target fut >/dev/null
aarch64-linux-gnu-gcc -std=c11 -O2 -Wall -Wextra -Werror -I include \
    -I "$build/include" test/cross/fiber_check.c "$build/libfut.a" \
    -lpthread -lm -o "$build/fiber_check"
if ! aarch64-linux-gnu-objdump -d "$build/libfut.a" | grep -c "mrs.*fpcr" >/dev/null; then
    echo "cross: the AArch64 build does not use the assembly switch"
    exit 1
fi
timeout 120 qemu-aarch64 -L /usr/aarch64-linux-gnu "$build/fiber_check"
