#!/usr/bin/env bash
# Builds tools/stress/thread_pool_stress.cpp against the pool's source, once
# optimised and once under ThreadSanitizer, and runs both with more threads
# than cores. Needs a C++17 compiler (the one that builds the package).
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${CXX:-c++}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
src=(tools/stress/thread_pool_stress.cpp csrc/runtime/thread_pool.cpp)

"$cxx" -std=c++17 -O2 -Icsrc "${src[@]}" -pthread -o "$out/plain"
timeout 300 "$out/plain" 3 200000

"$cxx" -std=c++17 -O1 -g -fsanitize=thread -Icsrc "${src[@]}" -pthread -o "$out/tsan"
TSAN_OPTIONS=halt_on_error=1 timeout 300 "$out/tsan" 3 20000
