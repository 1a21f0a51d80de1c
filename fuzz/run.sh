#!/usr/bin/env bash
# Builds the fuzz targets with clang (build/fuzz-build/, separate from build/)
# and runs each for SECONDS (default 60), starting from the seed corpora and
# fuzz/crashers/. Fails on the first crash, leak, sanitizer report or timeout.
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]
#   P11CHAT_FUZZ_RUNS=10000000 bash fuzz/run.sh 0 [TARGET...]
#
# Environment: P11CHAT_FUZZ_BUILD (build directory), P11CHAT_FUZZ_JOBS
# (make -j), P11CHAT_FUZZ_CFLAGS (more compiler flags), P11CHAT_FUZZ_CORPUS
# (where each target's growing corpus lives; default build/fuzz-build/corpus),
# P11CHAT_FUZZ_RUNS (stop each target after this many executions; SECONDS
# still caps the time, 0 for no time limit).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-60}
shift || true
build=${P11CHAT_FUZZ_BUILD:-$root/build/fuzz-build}
corpus=${P11CHAT_FUZZ_CORPUS:-$build/corpus}
jobs=${P11CHAT_FUZZ_JOBS:-$(nproc)}
san=-fsanitize=fuzzer-no-link,address,undefined

cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DP11CHAT_FUZZ=ON -DP11CHAT_TESTS=OFF -DP11CHAT_BENCH=OFF \
    "-DCMAKE_C_FLAGS=$san -fno-sanitize-recover=all -fno-omit-frame-pointer ${P11CHAT_FUZZ_CFLAGS:-}" >/dev/null
cmake --build "$build" -j "$jobs" --target fuzz_all >/dev/null

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(hello reply reply2 confirm finish record stream text trust uri keyfile)
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export LSAN_OPTIONS=suppressions=$root/tests/common/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for t in "${targets[@]}"; do
    mkdir -p "$corpus/$t" "$build/fuzz/artifacts/$t"
    dirs=("$corpus/$t" "$build/fuzz/seeds/$t")
    [ -d "fuzz/crashers/$t" ] && dirs+=("fuzz/crashers/$t")
    log=$build/fuzz/$t.log
    maxlen=16384
    [ "$t" = stream ] && maxlen=140000
    runs=()
    [ -n "${P11CHAT_FUZZ_RUNS:-}" ] && runs=(-runs="$P11CHAT_FUZZ_RUNS")
    if "$build/fuzz/fuzz_$t" -max_total_time="$secs" "${runs[@]}" -timeout=20 -rss_limit_mb=2048 \
        -max_len=$maxlen -print_final_stats=1 \
        -artifact_prefix="$build/fuzz/artifacts/$t/" "${dirs[@]}" >"$log" 2>&1; then
        n=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
        rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
        echo "fuzz_$t: ok, $n executions, $rate/s"
    else
        echo "fuzz_$t: FAILED (log: $log)" >&2
        grep -E 'ERROR|invariant|SUMMARY|Test unit written' "$log" | head -n 8 >&2 || true
        status=1
    fi
done
exit $status
