# Helpers for the integration tests: real pulld processes on loopback, driven by the real
# `pull` CLI. Source it from tests/integration/test_*.sh (it is not a test itself):
#
#   source "$(dirname "$0")/cli_common.sh"
#   start_nodes 3                          # n1..n3 running, control sockets answering
#   connect 1 2                            # n1 dials n2
#   id=$(pull_n 1 --json offer add "Rust mentoring" --tag rust | json_get id)
#   wait_until 10 "n2 has the offer" search_has 2 "$id" rust
#   stop_node 3                            # SIGTERM, must exit 0
#
# Nodes run with --no-lan --nat off --listen 127.0.0.1:0 (a free port each) in their own data dir
# under one temp dir ($IT_TMP/n1, n2, ...), logging to DIR/log at debug level. At exit every
# node still running is stopped (by its recorded pid only) and the temp dir removed; if the
# test failed, the end of each node's log is printed first, and with PULL_KEEP=1 the temp
# dir is kept. Binaries come from $PULL_BIN_DIR (set by ctest; default: build/), or $PULL
# and $PULLD. JSON is read with python3 (a test dependency: scripts/deps.sh).
set -euo pipefail

IT_SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PULL_BIN_DIR=${PULL_BIN_DIR:-$IT_SRC_DIR/build}
PULL=${PULL:-$PULL_BIN_DIR/cli/pull}
PULLD=${PULLD:-$PULL_BIN_DIR/daemon/pulld}
# True when pulld is a sanitizer build (its RSS and timings then mean little). The output
# is taken whole: `ldd | grep -q` under pipefail fails now and then, when grep's early exit
# kills ldd with SIGPIPE before its last line (seen: 11 runs in 300 on a loaded machine).
# has ARGS...: grep -q ARGS over all of stdin. Read whole first, so that the producer on the
# left of the pipe is never killed by SIGPIPE when grep finds its match early (which
# pipefail would turn into a false "not found").
has() {
    local all
    all=$(cat)
    grep -q "$@" <<<"$all"
}
pulld_sanitized() {
    case "$(ldd "${1:-$PULLD}" 2>/dev/null)" in *libasan*) return 0 ;; esac
    return 1
}
IT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pull-it.XXXXXX")
IT_PIDS=()
IT_EXTRA=()
IT_RC=0

# fail MESSAGE: print the message and end the test with status 1.
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# log MESSAGE: progress line on stderr.
log() {
    echo "-- $*" >&2
}

it_cleanup() {
    local rc=$? i
    trap - EXIT
    set +e
    for i in "${!IT_PIDS[@]}"; do
        if [ -n "${IT_PIDS[$i]}" ] && kill -0 "${IT_PIDS[$i]}" 2>/dev/null; then
            kill -TERM "${IT_PIDS[$i]}" 2>/dev/null
        fi
    done
    for i in "${!IT_PIDS[@]}"; do
        [ -n "${IT_PIDS[$i]}" ] && it_wait_pid "${IT_PIDS[$i]}" 10
    done
    if [ "$rc" -ne 0 ]; then
        for i in "${!IT_PIDS[@]}"; do
            echo "---- n$i log (last 30 lines): $(node_dir "$i")/log" >&2
            tail -n 30 "$(node_dir "$i")/log" >&2 2>/dev/null
        done
    fi
    if [ "$rc" -ne 0 ] && [ "${PULL_KEEP:-0}" = 1 ]; then
        echo "kept $IT_TMP" >&2
    else
        rm -rf "$IT_TMP"
    fi
    exit "$rc"
}
trap it_cleanup EXIT

# it_wait_pid PID TIMEOUT: wait for a child of this shell to exit (SIGKILL after TIMEOUT
# seconds) and set IT_RC to its exit status. (Not in $(...): a subshell can't wait for it.)
it_wait_pid() {
    local pid=$1 timeout=$2 n=0 rc=0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$n" -ge $((timeout * 10)) ]; then
            echo "pid $pid did not stop within ${timeout}s: killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
        n=$((n + 1))
    done
    wait "$pid" 2>/dev/null || rc=$?
    IT_RC=$rc
    return 0
}

# node_dir I: the data directory of node I.
node_dir() {
    echo "$IT_TMP/n$1"
}

# start_node I [PULLD ARGS...]: start node I in the background (its extra arguments are
# remembered for restart_node). Does not wait: see wait_node.
start_node() {
    local i=$1 dir
    shift
    dir=$(node_dir "$i")
    mkdir -p "$dir"
    chmod 700 "$dir"
    IT_EXTRA[$i]="$*"
    "$PULLD" --data-dir "$dir" --listen 127.0.0.1:0 --no-lan --nat off --log-level debug "$@" \
        >>"$dir/log" 2>&1 &
    IT_PIDS[$i]=$!
}

# wait_node I [TIMEOUT]: wait until node I's control socket answers `pull id`.
wait_node() {
    local i=$1 timeout=${2:-10} n=0 dir
    dir=$(node_dir "$i")
    until [ -S "$dir/pulld.sock" ] && "$PULL" --data-dir "$dir" id >/dev/null 2>&1; do
        if ! kill -0 "${IT_PIDS[$i]}" 2>/dev/null; then
            tail -n 20 "$dir/log" >&2 || true
            fail "pulld n$i exited during startup"
        fi
        if [ "$n" -ge $((timeout * 20)) ]; then
            fail "pulld n$i: no control socket after ${timeout}s"
        fi
        sleep 0.05
        n=$((n + 1))
    done
}

# start_nodes N [PULLD ARGS...]: start nodes 1..N and wait for all of them.
start_nodes() {
    local n=$1 i
    shift
    for i in $(seq 1 "$n"); do
        start_node "$i" "$@"
    done
    for i in $(seq 1 "$n"); do
        wait_node "$i"
    done
    log "started $n node(s) in $IT_TMP"
}

# stop_node I [TIMEOUT]: SIGTERM node I and wait; fails unless it exits 0 (CONTRACT.md).
stop_node() {
    local i=$1 timeout=${2:-10}
    [ -n "${IT_PIDS[$i]:-}" ] || fail "n$i was not started"
    kill -TERM "${IT_PIDS[$i]}" 2>/dev/null || true
    it_wait_pid "${IT_PIDS[$i]}" "$timeout"
    IT_PIDS[$i]=""
    [ "$IT_RC" = 0 ] || fail "pulld n$i exited with status $IT_RC on SIGTERM"
}

# kill_node I: SIGKILL node I (a crash); no status check.
kill_node() {
    local i=$1
    kill -KILL "${IT_PIDS[$i]}" 2>/dev/null || true
    it_wait_pid "${IT_PIDS[$i]}" 5
    IT_PIDS[$i]=""
}

# restart_node I: start node I again with the same data dir and arguments, and wait.
restart_node() {
    local i=$1
    # shellcheck disable=SC2086 # the remembered arguments are word-split on purpose
    start_node "$i" ${IT_EXTRA[$i]:-}
    wait_node "$i"
}

# pull_n I ARGS...: run the CLI against node I.
pull_n() {
    local i=$1
    shift
    "$PULL" --data-dir "$(node_dir "$i")" "$@"
}

# json_get PATH: read one JSON value on stdin and print the element at PATH, a dotted
# path of keys and array indexes ("id", "addresses.0", "0.title"); "length" gives the
# length of an array or object. Strings print raw, other values as JSON. Fails if absent.
json_get() {
    python3 -c '
import json, sys
v = json.loads(sys.stdin.read())
for p in [p for p in sys.argv[1].split(".") if p]:
    if p == "length":
        v = len(v)
    elif isinstance(v, list):
        v = v[int(p)]
    else:
        v = v[p]
print(v if isinstance(v, str) else json.dumps(v))
' "$1"
}

# json_lines_get PATH: json_get on each line of stdin (streams: watch).
json_lines_get() {
    local line
    while IFS= read -r line; do
        [ -n "$line" ] && printf '%s\n' "$line" | json_get "$1"
    done
}

# node_id I: node I's id (52 characters).
node_id() {
    pull_n "$1" --json id | json_get id
}

# node_addr I: an address other nodes can dial, ID@127.0.0.1:PORT.
node_addr() {
    pull_n "$1" --json id | json_get addresses.0
}

# connect I J: node I dials node J.
connect() {
    pull_n "$1" connect "$(node_addr "$2")" >/dev/null || fail "n$1 could not dial n$2"
}

# connect_chain N: 1-2, 2-3, ..., (N-1)-N.
connect_chain() {
    local i
    for i in $(seq 1 $(($1 - 1))); do
        connect "$i" $((i + 1))
    done
}

# peer_count I: how many peers node I reports as active.
peer_count() {
    pull_n "$1" --json peers |
        python3 -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin) if p.get("state") == "active"))'
}

# search_has I ID [WORDS...]: true if `pull search WORDS` on node I lists record ID.
search_has() {
    local i=$1 id=$2
    shift 2
    pull_n "$i" --json search "$@" --limit 10000 |
        python3 -c 'import json,sys; sys.exit(0 if any(r["id"] == sys.argv[1] for r in json.load(sys.stdin)) else 1)' "$id"
}

# wait_until TIMEOUT WHAT CMD [ARGS...]: run CMD every 0.1 s until it succeeds; fail with
# "timed out after TIMEOUT s waiting for WHAT" otherwise.
wait_until() {
    local timeout=$1 what=$2 n=0
    shift 2
    until "$@" >/dev/null 2>&1; do
        if [ "$n" -ge $((timeout * 10)) ]; then
            fail "timed out after ${timeout}s waiting for $what"
        fi
        sleep 0.1
        n=$((n + 1))
    done
}

# assert_eq GOT WANT [WHAT]
assert_eq() {
    [ "$1" = "$2" ] || fail "${3:-value}: got '$1', want '$2'"
}

# assert_contains HAYSTACK NEEDLE [WHAT]
assert_contains() {
    case "$1" in
    *"$2"*) ;;
    *) fail "${3:-output} does not contain '$2': $1" ;;
    esac
}

# expect_fail STATUS CMD [ARGS...]: run CMD, which must exit with STATUS and print exactly
# one line starting with "pull: " on stderr. Prints that line.
expect_fail() {
    local want=$1 rc=0 err
    shift
    err=$("$@" 2>&1 >/dev/null) || rc=$?
    [ "$rc" = "$want" ] || fail "$* exited $rc, want $want (stderr: $err)"
    case "$err" in
    "pull: "*) ;;
    *) fail "$*: stderr should be one 'pull: ' line, got: $err" ;;
    esac
    [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "$*: more than one line on stderr: $err"
    printf '%s\n' "$err"
}

[ -x "$PULL" ] || fail "no pull binary at $PULL (build first, or set PULL_BIN_DIR)"
[ -x "$PULLD" ] || fail "no pulld binary at $PULLD (build first, or set PULL_BIN_DIR)"

# ---- Added for the LAN, namespace, hostile and disk-full tests ----

# it_on_exit CMD: run CMD (a string, eval'd, errors ignored) when the test ends, before the
# nodes are stopped and the temp dir removed: e.g. delete the network namespaces it made.
IT_ON_EXIT=()
it_on_exit() {
    IT_ON_EXIT+=("$1")
    trap it_run_on_exit EXIT
}
it_run_on_exit() {
    local rc=$? c
    set +e
    for c in "${IT_ON_EXIT[@]}"; do
        eval "$c" >/dev/null 2>&1
    done
    (exit "$rc")
    it_cleanup
}

# skip MESSAGE: end the test as skipped (ctest: exit code 77), saying why.
skip() {
    echo "SKIP: $*" >&2
    exit 77
}

# start_node_custom I NETNS [PULLD ARGS...]: start node I like start_node, but without its
# defaults --no-lan and --listen 127.0.0.1:0 (pass the ones you need), and inside network
# namespace NETNS (through `ip netns exec`; "" for none). The CLI still reaches it: the
# control socket is a path in the data dir. Don't use restart_node on such a node.
start_node_custom() {
    local i=$1 ns=$2 dir
    shift 2
    dir=$(node_dir "$i")
    mkdir -p "$dir"
    chmod 700 "$dir"
    IT_EXTRA[$i]="$*"
    if [ -n "$ns" ]; then
        ip netns exec "$ns" "$PULLD" --data-dir "$dir" --log-level debug "$@" >>"$dir/log" 2>&1 &
    else
        "$PULLD" --data-dir "$dir" --log-level debug "$@" >>"$dir/log" 2>&1 &
    fi
    IT_PIDS[$i]=$!
}

# node_pid I: the pid of node I (empty if stopped).
node_pid() {
    echo "${IT_PIDS[$1]:-}"
}

# node_alive I: true if node I's process is running.
node_alive() {
    [ -n "${IT_PIDS[$1]:-}" ] && kill -0 "${IT_PIDS[$1]}" 2>/dev/null
}

# peers_has I ID: true if `pull --json peers` on node I lists peer ID with state active.
peers_has() {
    pull_n "$1" --json peers |
        python3 -c 'import json,sys; sys.exit(0 if any(p.get("id") == sys.argv[1] and p.get("state") == "active" for p in json.load(sys.stdin)) else 1)' "$2"
}

# status_counter I NAME: counter NAME of `pull --json status` ("counters" object), 0 if
# absent.
status_counter() {
    pull_n "$1" --json status |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("counters", {}).get(sys.argv[1], 0))' "$2"
}

# search_count I [SEARCH ARGS...]: how many records `pull --json search ARGS` lists.
search_count() {
    local i=$1
    shift
    pull_n "$i" --json search "$@" --limit 10000 | json_get length
}

# timed_ms CMD [ARGS...]: run CMD (output discarded) and print how long it took, in ms.
timed_ms() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1 || true
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}

# netns_usable: true if this process may create network namespaces with `ip netns`.
netns_usable() {
    local ns="pull-probe-$$"
    command -v ip >/dev/null 2>&1 || return 1
    ip netns add "$ns" >/dev/null 2>&1 || return 1
    ip netns del "$ns" >/dev/null 2>&1
    return 0
}

# veth_up NSA VA NSB VB: true when both ends of a veth link are running.
veth_up() {
    ip -n "$1" link show "$2" | has 'state UP' && ip -n "$3" link show "$4" | has 'state UP'
}

# veth_pair NSA NSB VA VB NET: create network namespaces NSA and NSB (deleted when the
# test ends) joined by a veth link, VA = NET.1/24 in NSA and VB = NET.2/24 in NSB, with
# loopback and the link up. Returns once both ends run: a node reads its interfaces once
# at start, so it must not start before.
veth_pair() {
    local nsa=$1 nsb=$2 va=$3 vb=$4 net=$5
    it_on_exit "ip netns del $nsa; ip netns del $nsb"
    ip netns add "$nsa"
    ip netns add "$nsb"
    ip link add "$va" netns "$nsa" type veth peer name "$vb" netns "$nsb"
    ip -n "$nsa" addr add "$net.1/24" dev "$va"
    ip -n "$nsb" addr add "$net.2/24" dev "$vb"
    ip -n "$nsa" link set lo up
    ip -n "$nsb" link set lo up
    ip -n "$nsa" link set "$va" up
    ip -n "$nsb" link set "$vb" up
    wait_until 10 "the veth link to come up" veth_up "$nsa" "$va" "$nsb" "$vb"
}
