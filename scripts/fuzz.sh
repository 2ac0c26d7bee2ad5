#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (+ASan+UBSan) and runs each for N seconds
# (default 60) on a copy of its seed corpus. Crashes are left in build-fuzz/artifacts/;
# keep them as regression inputs in tests/fuzz/corpus/<decoder>/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
CC=clang cmake -S . -B build-fuzz -DPULL_FUZZ=ON -DPULL_TESTS=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
mkdir -p build-fuzz/artifacts
status=0
for bin in build-fuzz/tests/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin"); dec=${name#fuzz_}
    work=build-fuzz/corpus-$dec; mkdir -p "$work"
    cp -n tests/fuzz/corpus/"$dec"/* "$work"/ 2>/dev/null || true
    echo "-- $name for ${secs}s"
    if ! "$bin" -max_total_time="$secs" -artifact_prefix=build-fuzz/artifacts/"$dec"- \
            -print_final_stats=1 "$work" 2>build-fuzz/"$name".log; then
        echo "$name FAILED"; tail -40 build-fuzz/"$name".log; status=1
    else
        grep -E 'stat::number_of_executed_units|cov:' build-fuzz/"$name".log | tail -2
    fi
done
exit $status
