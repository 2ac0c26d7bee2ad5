#!/usr/bin/env bash
# Sets up (installs what is missing), builds, and runs pull.
#   ./scripts/run.sh                 one node with defaults, in the foreground
#   ./scripts/run.sh --local 3       a small network of 3 nodes on loopback (Ctrl-C stops all)
#   ./scripts/run.sh -- ARGS...      one node with extra pulld flags
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
pulld=build/daemon/pulld
pull=build/cli/pull
if [ ! -x "$pulld" ]; then
    echo "run.sh: pulld is not built yet in this version" >&2
    exit 1
fi
echo "built: $pulld and $pull (add $(pwd)/build/daemon and $(pwd)/build/cli to PATH)"
if [ "${1:-}" = "--local" ]; then
    n=${2:-3}
    base=$(mktemp -d /tmp/pull-local-XXXXXX)
    pids=()
    trap 'kill "${pids[@]}" 2>/dev/null; wait; echo "stopped; data in $base"' EXIT INT TERM
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
    wait
else
    [ "${1:-}" = "--" ] && shift
    exec "$pulld" "$@"
fi
