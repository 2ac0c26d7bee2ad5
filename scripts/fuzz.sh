#!/usr/bin/env bash
# Fuzzing with libFuzzer (clang, ASan + UBSan), in its own build (build-fuzz/).
#
#   scripts/fuzz.sh [SECONDS]            every harness for SECONDS (default 60) on a copy of
#                                        its seed corpus; CI runs this for 20 s each
#   scripts/fuzz.sh --campaign [RUNS] [HARNESS...]
#                                        every harness (or those named) for RUNS executions
#                                        (default 10,000,000), then the grown corpus is
#                                        minimised (-merge=1) back into tests/fuzz/corpus/<name>/
#                                        so every build replays it (ctest -L fuzz); figures go
#                                        to build-fuzz/campaign.txt
#
# Crashes are left in build-fuzz/artifacts/; keep them as regression inputs in
# tests/fuzz/corpus/<decoder>/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=time secs=60 runs=10000000 only=()
if [ "${1:-}" = --campaign ]; then
    mode=campaign; shift
    if [[ "${1:-}" =~ ^[0-9]+$ ]]; then runs=$1; shift; fi
    only=("$@")
elif [ -n "${1:-}" ]; then
    secs=$1
fi
CC=clang cmake -S . -B build-fuzz -DPULL_FUZZ=ON -DPULL_TESTS=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
mkdir -p build-fuzz/artifacts
status=0
for bin in build-fuzz/tests/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin"); dec=${name#fuzz_}
    if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " $dec " ]]; then continue; fi
    work=build-fuzz/corpus-$dec; mkdir -p "$work" tests/fuzz/corpus/"$dec"
    cp -n tests/fuzz/corpus/"$dec"/* "$work"/ 2>/dev/null || true
    if [ $mode = time ]; then
        limit=(-max_total_time="$secs")
        echo "-- $name for ${secs}s"
    else
        limit=(-runs="$runs")
        echo "-- $name for $runs executions"
    fi
    start=$(date +%s)
    if ! "$bin" "${limit[@]}" -artifact_prefix=build-fuzz/artifacts/"$dec"- \
            -print_final_stats=1 "$work" 2>build-fuzz/"$name".log; then
        echo "$name FAILED"; tail -40 build-fuzz/"$name".log; status=1
        continue
    fi
    grep -E 'stat::number_of_executed_units|cov:' build-fuzz/"$name".log | tail -2
    if [ $mode = campaign ]; then
        execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' build-fuzz/"$name".log | grep -oE '[0-9]+$')
        cov=$(grep -oE 'cov: [0-9]+' build-fuzz/"$name".log | tail -1 | grep -oE '[0-9]+')
        # the named seeds stay; the grown inputs (named by their SHA-1) are replaced by the
        # fewest that keep the campaign's coverage
        find tests/fuzz/corpus/"$dec" -regextype egrep -regex '.*/[0-9a-f]{40}' -delete
        "$bin" -merge=1 tests/fuzz/corpus/"$dec" "$work" 2>build-fuzz/"$name".merge.log
        min=tests/fuzz/corpus/"$dec"
        printf '%-10s %12s execs %6s s  cov %6s  corpus %5s files %8s bytes\n' "$dec" "$execs" \
            $(( $(date +%s) - start )) "$cov" "$(ls "$min" | wc -l)" \
            "$(cat "$min"/* | wc -c)" | tee -a build-fuzz/campaign.txt
    fi
done
exit $status
