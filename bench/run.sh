#!/usr/bin/env bash
# Builds and runs the benchmark (docs/benchmarks.md):
#
#   bash bench/run.sh [--quick] [--json FILE] [--only SECTION]
#
# Installs what is missing (scripts/setup.sh), configures and builds into
# build/ (or $P11CHAT_BUILD), then runs build/bench/p11chat-bench with the
# arguments given. The benchmark makes its own SoftHSM2 token under the build
# tree and removes it at the end.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${P11CHAT_BUILD:-$root/build}

bash "$root/scripts/setup.sh"
cmake -S "$root" -B "$build" -DP11CHAT_BENCH=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target p11chat_bench >/dev/null
exec "$build/bench/p11chat-bench" "$@"
