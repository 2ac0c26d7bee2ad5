#!/usr/bin/env bash
# Ten pulld processes on loopback, chained by --bootstrap (node i knows only node i-1),
# without LAN discovery: the gossip overlay must form by itself, and an offer added on one
# node must be found by `pull search` on every node within 2 seconds. Then a node leaves
# (SIGTERM, exit 0) and a new offer still reaches all the others.
source "$(dirname "$0")/cli_common.sh"

N=10

# finds I ID WORD: `pull search WORD` on node I lists ID (grep, not python: this is polled
# for a timing, and python's start-up costs more than the whole search).
finds() {
    pull_n "$1" --json search "$3" --limit 10000 | has "\"id\":\"$2\""
}

# all_find ID WORD NODES...: true if `pull search WORD` lists ID on every given node.
all_find() {
    local id=$1 word=$2 i
    shift 2
    for i in "$@"; do
        finds "$i" "$id" "$word" || return 1
    done
}

# spread_ms T0_NS ID WORD NODES...: poll every node until all find ID (at most 2 s), print
# the milliseconds from T0 to the moment the last one found it.
spread_ms() {
    local t0=$1 id=$2 word=$3 i n=0
    shift 3
    local left=("$@")
    while [ "${#left[@]}" -gt 0 ]; do
        local next=()
        for i in "${left[@]}"; do
            finds "$i" "$id" "$word" || next+=("$i")
        done
        left=("${next[@]+"${next[@]}"}")
        [ "${#left[@]}" -eq 0 ] && break
        n=$((n + 1))
        [ "$n" -le 400 ] || return 1
        sleep 0.005
    done
    echo $((($(date +%s%N) - t0) / 1000000))
}

# connected I: node I has at least one active peer.
connected() {
    [ "$(peer_count "$1")" -ge 1 ]
}

start_node 1
wait_node 1
for i in $(seq 2 $N); do
    start_node "$i" --bootstrap "$(node_addr $((i - 1)))"
    wait_node "$i"
done
log "started $N nodes chained by --bootstrap"
for i in $(seq 1 $N); do
    wait_until 10 "n$i to have an active peer" connected "$i"
done
# let the overlay settle its first joins (random walks, neighbour requests)
sleep 1

ALL=$(seq 1 $N)
t0=$(date +%s%N)
out=$(pull_n 5 --json offer add "Soldering lessons" --tag electronics --body "weekends")
id=$(printf '%s' "$out" | sed -n 's/^{"id":"\([a-z2-7]*\)".*/\1/p')
[ -n "$id" ] || fail "offer add printed no id: $out"
ms=$(spread_ms "$t0" "$id" soldering $ALL) || fail "the offer did not reach all $N nodes within 2 s"
[ "$ms" -le 2000 ] || fail "the offer took $ms ms to reach all $N nodes (limit 2000)"
log "offer from n5 found on all $N nodes after $ms ms (add included)"

# the overlay is connected: every node has between 1 and 16 active peers
for i in $ALL; do
    c=$(peer_count "$i")
    [ "$c" -ge 1 ] && [ "$c" -le 16 ] || fail "n$i has $c active peers"
done

# one node leaves cleanly; the others still get everything
stop_node 3
REST=$(seq 1 $N | grep -vx 3)
t0=$(date +%s%N)
id2=$(pull_n 9 --json need add "Looking for a bike repair" --tag bike | json_get id)
wait_until 5 "the need on the $((N - 1)) remaining nodes" all_find "$id2" bike $REST
log "need from n9 found on the $((N - 1)) remaining nodes after $((($(date +%s%N) - t0) / 1000000)) ms"

# counters: handshakes happened, nothing malformed between honest nodes
for i in $REST; do
    ok=$(status_counter "$i" handshakes_ok)
    bad=$(status_counter "$i" frames_bad)
    [ "$ok" -ge 1 ] || fail "n$i: no handshake counted"
    [ "$bad" = 0 ] || fail "n$i: $bad bad frames between honest nodes"
done
for i in $REST; do
    stop_node "$i"
done
log "ok"
