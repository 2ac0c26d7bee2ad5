#!/usr/bin/env bash
# Sets up (installs what is missing), builds, and runs pull.
#   ./scripts/run.sh                 one node with defaults, in the foreground
#   ./scripts/run.sh --local 3       a small network of 3 nodes on loopback (Ctrl-C stops all)
#   ./scripts/run.sh -- ARGS...      one node with extra pulld flags
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "run.sh: $*" >&2; }

# build_step WHAT CMD...: run a build command, showing its progress ("[ 45%]") on one line
# on a terminal, its last lines if it fails.
build_step() {
    local what=$1 log
    shift
    log=$(mktemp /tmp/pull-build-XXXXXX)
    if [ -t 2 ]; then
        if ! "$@" 2>&1 | tee "$log" | while IFS= read -r line; do
            case "$line" in
            "["*"%]"*) printf '\r\033[Krun.sh: %s %s' "$what" "${line%%]*}]" >&2 ;;
            esac
        done; then
            printf '\n' >&2
            tail -n 30 "$log" >&2
            rm -f "$log"
            say "$what failed"
            exit 1
        fi
        printf '\r\033[K' >&2
    elif ! "$@" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        say "$what failed"
        exit 1
    fi
    rm -f "$log"
}

say "checking the build dependencies (scripts/deps.sh)..."
bash scripts/deps.sh
say "configuring (cmake)..."
build_step configuring cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
say "building pulld and pull (about a minute the first time, seconds after)..."
build_step building cmake --build build -j"$(nproc)"
pulld=build/daemon/pulld
pull=build/cli/pull
if [ ! -x "$pulld" ]; then
    say "pulld is not built yet in this version"
    exit 1
fi
echo "built: $pulld and $pull (add $(pwd)/build/daemon and $(pwd)/build/cli to PATH)"
if [ "${1:-}" = "--local" ]; then
    n=${2:-3}
    base=$(mktemp -d /tmp/pull-local-XXXXXX)
    pids=()
    stopped=0
    # stop_all runs once, on Ctrl-C or at exit: the nodes may be gone already (Ctrl-C
    # reaches them too), so nothing here may fail under set -e.
    stop_all() {
        [ "$stopped" = 1 ] && return
        stopped=1
        trap - EXIT INT TERM
        [ "${#pids[@]}" -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
        wait 2>/dev/null || true
        echo
        echo "stopped; data in $base"
    }
    trap 'stop_all; exit 0' INT TERM
    trap stop_all EXIT
    boot=()
    for i in $(seq 1 "$n"); do
        port=$((7450 + i))
        "$pulld" --data-dir "$base/n$i" --listen 127.0.0.1:$port --no-lan "${boot[@]}" \
            2>"$base/n$i.log" &
        pids+=($!)
        for _ in $(seq 50); do [ -S "$base/n$i/pulld.sock" ] && break; sleep 0.1; done
        id=$("$pull" --data-dir "$base/n$i" --json id | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
        boot=(--bootstrap "$id@127.0.0.1:$port")
        echo "node $i: $id@127.0.0.1:$port  (pull --data-dir $base/n$i ...)"
    done
    echo "$n nodes running; logs in $base/*.log; Ctrl-C to stop"
    wait || true
else
    [ "${1:-}" = "--" ] && shift
    exec "$pulld" "$@"
fi
