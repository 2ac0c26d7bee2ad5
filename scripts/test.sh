#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds in build/ (or build-asan/ with
# --sanitize: AddressSanitizer + UndefinedBehaviorSanitizer), runs every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${1:-}" = "--sanitize" ]; then
    dir=build-asan
    cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DPULL_SANITIZE=ON)
    shift
fi
bash scripts/deps.sh
cmake -S . -B "$dir" "${cmake_args[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
cd "$dir"
ctest --output-on-failure -j"$(nproc)" "$@"
