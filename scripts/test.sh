#!/usr/bin/env bash
# The whole test suite: set-up, a build in build/ and every test under ctest,
# then the same suite built with AddressSanitizer and UndefinedBehaviorSanitizer
# in build/asan/, then the thread test built with ThreadSanitizer in
# build/tsan/, then each fuzz target briefly. Exits non-zero on any failure.
#   P11CHAT_QUICK=1     the first stage only (build/ and its tests)
#   P11CHAT_VALGRIND=1  also the token test programs of build/ under valgrind's
#                       memcheck (tests/fault/valgrind.sh; adds about fifteen minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

stage_start=$SECONDS
stage() {
    [ -z "${stage_name:-}" ] || echo "== $stage_name: done in $((SECONDS - stage_start)) s"
    stage_name=$1
    stage_start=$SECONDS
    [ -z "$1" ] || echo "== $1"
}

bash scripts/setup.sh

stage "build (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
stage "tests"
ctest --test-dir build --output-on-failure -j "$jobs"

if [ "${P11CHAT_QUICK:-0}" != 1 ]; then
    stage "tests under AddressSanitizer + UndefinedBehaviorSanitizer (build/asan/)"
    cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DP11CHAT_SANITIZE=ON -DP11CHAT_BENCH=OFF >/dev/null
    cmake --build build/asan -j "$jobs"
    ctest --test-dir build/asan --output-on-failure -j "$jobs" -LE nosan

    # Only the thread test (label tsan) and what it links: the provider and
    # libp11chat, instrumented; SoftHSM2's own gmtime() race is suppressed.
    stage "threads under ThreadSanitizer (build/tsan/)"
    cmake -S . -B build/tsan -DP11CHAT_TSAN=ON -DP11CHAT_BENCH=OFF >/dev/null
    cmake --build build/tsan -j "$jobs" --target concurrency
    ctest --test-dir build/tsan --output-on-failure --no-tests=error -L tsan

    if [ -x fuzz/run.sh ]; then
        stage "fuzz targets, briefly"
        bash fuzz/run.sh 15
    fi

    if [ "${P11CHAT_VALGRIND:-0}" = 1 ]; then
        stage "token tests under valgrind memcheck (build/)"
        bash tests/fault/valgrind.sh build
    fi
fi
stage ""
