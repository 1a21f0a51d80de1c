#!/usr/bin/env bash
# The whole test suite: set-up, a build in build/ and every test under ctest,
# then the same suite built with AddressSanitizer and UndefinedBehaviorSanitizer
# in build/asan/, then each fuzz target briefly. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

bash scripts/setup.sh

echo "== build (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
echo "== tests"
ctest --test-dir build --output-on-failure -j "$jobs"

if [ "${P11CHAT_QUICK:-0}" != 1 ]; then
    echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer (build/asan/)"
    cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DP11CHAT_SANITIZE=ON -DP11CHAT_BENCH=OFF >/dev/null
    cmake --build build/asan -j "$jobs"
    ctest --test-dir build/asan --output-on-failure -j "$jobs" -LE nosan
    if [ -x fuzz/run.sh ]; then
        echo "== fuzz targets, briefly"
        bash fuzz/run.sh 15
    fi
fi
