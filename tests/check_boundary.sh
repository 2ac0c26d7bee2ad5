#!/usr/bin/env bash
# proto/ is sans-I/O: no sockets, no event loop, no LMDB, no wall clock, no direct randomness.
# Engines get time as now_ms and randomness through struct pull_env (lib/env.h).
set -eu
root=${1:-$(dirname "$0")/..}
bad=$(grep -nE '\b(uv_[a-z_]+|mdb_[a-z_]+|time\(|gettimeofday|clock_gettime|randombytes_[a-z_]+|socket\(|connect\(|send\(|recv\()' \
      "$root"/proto/*.c "$root"/proto/*.h 2>/dev/null | grep -v '^\s*//' || true)
if [ -n "$bad" ]; then
    echo "proto/ must stay sans-I/O; offending lines:"
    echo "$bad"
    exit 1
fi
echo "proto boundary ok"
