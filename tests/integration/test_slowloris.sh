#!/usr/bin/env bash
# Slowloris against a real pulld: a stranger (pull-evil, from its own loopback address)
# holds connections that never get anywhere while honest pulld nodes, each listening on
# and dialing from an address of its own (127.0.0.11, .12, ...), connect to the target
# with `pull connect`. Three rounds, each with fresh honest nodes:
#   idle     40 TCP connections from 127.0.0.2 that never send a byte, reopened as soon as
#            the target closes them;
#   nohello  100 sessions from 127.0.0.3 that finish the handshake and never send HELLO,
#            made again as soon as the target closes them;
#   spread   160 silent connections from 40 addresses (127.0.1.1 .. 127.0.1.40): more
#            sources than the handshake slots, so honest peers need the eviction.
# Every honest node must connect within HONEST_WINDOW_S seconds of trying; the figures
# ("k of N connected", how long the attacker's connections lived, the target's counters)
# are printed. PULL_MEASURE=1 prints them without failing (to measure an older build).
source "$(dirname "$0")/cli_common.sh"

EVIL=${PULL_EVIL:-$PULL_BIN_DIR/tests/pull-evil}
[ -x "$EVIL" ] || fail "no pull-evil at $EVIL (build first)"
N=${SLOWLORIS_HONEST:-5}
HONEST_WINDOW_S=${HONEST_WINDOW_S:-5}
# AddressSanitizer makes every handshake several times slower (the attacker's as well)
if pulld_sanitized; then
    HONEST_WINDOW_S=${HONEST_WINDOW_S_ASAN:-10}
fi
ATTACK_S=${SLOWLORIS_ATTACK_S:-14}
MEASURE=${PULL_MEASURE:-0}

python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.2", 0)); s.close()' 2>/dev/null ||
    skip "cannot bind 127.0.0.2 (loopback addresses other than 127.0.0.1)"

check() { # check COND MESSAGE: fail unless COND holds (only log it with PULL_MEASURE=1)
    if ! eval "$1"; then
        [ "$MEASURE" = 1 ] && log "(measure only) FAIL: $2" || fail "$2"
    fi
}

start_node 1
for k in $(seq 1 $((3 * N))); do
    start_node_custom $((k + 1)) "" --no-lan --listen "127.0.0.$((10 + k)):0"
done
for k in $(seq 1 $((3 * N + 1))); do
    wait_node "$k"
done
target=$(node_addr 1)
log "target n1 at $target; $((3 * N)) honest nodes on 127.0.0.11 .. 127.0.0.$((10 + 3 * N))"

counters() {
    pull_n 1 --json status | python3 -c '
import json, sys
c = json.load(sys.stdin).get("counters", {})
print(" ".join("%s=%s" % (k, c.get(k, "?")) for k in (
    "conns_in", "conns_refused", "conns_limited", "conns_evicted", "handshakes_ok",
    "handshakes_failed", "handshakes_slow")))'
}

# honest_try I: node I runs `pull connect` to the target until it succeeds, for at most
# HONEST_WINDOW_S seconds; on success writes the milliseconds it took to $IT_TMP/ok-I.
honest_try() {
    local i=$1 t0 now
    t0=$(date +%s%N)
    while :; do
        if pull_n "$i" connect "$target" >/dev/null 2>&1; then
            echo $((($(date +%s%N) - t0) / 1000000)) >"$IT_TMP/ok-$i"
            return 0
        fi
        now=$(date +%s%N)
        [ $(((now - t0) / 1000000)) -lt $((HONEST_WINDOW_S * 1000)) ] || return 0
        sleep 0.2
    done
}

# honest_round FIRST LAST: nodes FIRST..LAST try at once; prints "k slowest_ms".
honest_round() {
    local i pids=() k=0 worst=0 ms
    for i in $(seq "$1" "$2"); do
        rm -f "$IT_TMP/ok-$i"
        honest_try "$i" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do
        wait "$i" || true
    done
    for i in $(seq "$1" "$2"); do
        if [ -f "$IT_TMP/ok-$i" ]; then
            k=$((k + 1))
            ms=$(cat "$IT_TMP/ok-$i")
            [ "$ms" -gt "$worst" ] && worst=$ms
        fi
    done
    echo "$k $worst"
}

# attack NAME FIRST LAST MODE [EVIL ARGS...]: run pull-evil MODE in the background, let it
# fill the slots, then honest nodes FIRST..LAST connect; checks that all of them did.
attack() {
    local name=$1 first=$2 last=$3 mode=$4 pid res k worst ms
    shift 4
    "$EVIL" "$mode" "$target" "$@" --seconds "$ATTACK_S" >"$IT_TMP/evil-$name.out" 2>&1 &
    pid=$!
    sleep 3
    ms=$(timed_ms pull_n 1 status)
    res=$(honest_round "$first" "$last")
    k=${res% *}
    worst=${res#* }
    wait "$pid" || fail "pull-evil $name failed: $(tail -n 5 "$IT_TMP/evil-$name.out")"
    log "$name: $k of $((last - first + 1)) honest nodes connected within ${HONEST_WINDOW_S} s" \
        "(slowest ${worst} ms); pull status during the attack: ${ms} ms"
    log "$name: $(grep '^EVIL' "$IT_TMP/evil-$name.out" | tr '\n' ' ')"
    log "$name: target counters: $(counters)"
    [ -n "${SLOWLORIS_DEBUG:-}" ] && for i in $(seq 1 $((3 * N + 1))); do cp "$(node_dir "$i")/log" "$SLOWLORIS_DEBUG-$name-n$i.log"; done
    node_alive 1 || fail "the target died during the $name attack"
    check "[ $k = $((last - first + 1)) ]" \
        "$name: only $k of $((last - first + 1)) honest nodes connected during the attack"
}

counter() { status_counter 1 "$1"; }

# ---- 1. silent TCP connections from one address ----
attack idle 2 $((N + 1)) idle --count 40 --bind 127.0.0.2
check "[ $(counter conns_limited) -gt 0 ]" "idle: no connection refused for its address's share"
check "[ $(counter handshakes_slow) -gt 0 ]" "idle: no silent connection timed out"

# ---- 2. sessions that never send HELLO, from one address ----
slow0=$(counter handshakes_slow)
attack nohello $((N + 2)) $((2 * N + 1)) nohello --count 100 --bind 127.0.0.3
check "[ $(counter handshakes_slow) -gt $slow0 ]" "nohello: no session without HELLO timed out"

# ---- 3. silent connections from more addresses than there are handshake slots ----
attack spread $((2 * N + 2)) $((3 * N + 1)) idle --count 160 --bind 127.0.1.1 --spread 40
check "[ $(counter conns_evicted) -gt 0 ]" "spread: no connection evicted for a newcomer"

for i in $(seq 1 $((3 * N + 1))); do
    node_alive "$i" || fail "pulld n$i died"
done
for i in $(seq 1 $((3 * N + 1))); do
    stop_node "$i"
done
echo "PASS: honest nodes connected through every slowloris attack"
