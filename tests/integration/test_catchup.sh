#!/usr/bin/env bash
# Catch-up: a node that was stopped while 20,000 records were written elsewhere has all of
# them within 20 s of restarting. It finds its peer again from the peers it persisted (and
# its --bootstrap line), and reconciliation (proto/recon) brings the difference over: the
# records were imported while it was away, so gossip alone would never send them. 20,000
# is more than two of pulld's batches (NODE_BATCH_MAX 8,192): every record the catch-up
# brings waits for a verdict in gossip's pending table until its commit, and when that
# table was smaller than what pulld holds unanswered, records were dropped and the
# catch-up stalled until the next reconciliation (28 s).
source "$(dirname "$0")/cli_common.sh"

PULL_BENCH=${PULL_BENCH:-$PULL_BIN_DIR/bench/pull-bench}
[ -x "$PULL_BENCH" ] || fail "no pull-bench binary at $PULL_BENCH"

# records I: how many records node I stores (tombstones included).
records() {
    pull_n "$1" --json status | json_get records
}

# has_at_least I N: node I stores at least N records.
has_at_least() {
    [ "$(records "$1")" -ge "$2" ]
}

start_node 1
wait_node 1
start_node 2 --bootstrap "$(node_addr 1)"
wait_node 2
start_node 3 --bootstrap "$(node_addr 1)"
wait_node 3
wait_until 10 "n2 to connect" peers_has 2 "$(node_id 1)"
wait_until 10 "n3 to connect" peers_has 3 "$(node_id 1)"
id0=$(pull_n 1 --json offer add "Before the outage" --tag before | json_get id)
wait_until 5 "n2 to have the first offer" search_has 2 "$id0" outage

stop_node 2
# The import reaches n1 by gossip, in bursts of a commit each (up to 8,192 records, 3 MB):
# more than a peer's backlog limit (1 MiB). n1 reads at its verifiers' pace; n3 must wait
# for it (gossip's defer queue), not drop it as stuck and leave the rest to the periodic
# reconciliation 30 s later.
N=20000
"$PULL_BENCH" gen "$N" "$IT_TMP/bundle" >/dev/null
hs0=$(status_counter 1 handshakes_ok)
t0=$(date +%s%N)
out=$(pull_n 3 --json import "$IT_TMP/bundle")
assert_eq "$(printf '%s' "$out" | json_get imported)" "$N" "records imported on n3"
wait_until 60 "n1 to have the imported records" has_at_least 1 $((N + 1))
ms=$((($(date +%s%N) - t0) / 1000000))
log "n1 had the $N records by gossip $ms ms after the import began"
[ "$ms" -lt 20000 ] || fail "n1 took $ms ms to get the records by gossip (a dropped link waits for reconciliation)"
assert_eq "$(status_counter 1 handshakes_ok)" "$hs0" "n1's handshakes (the link to n3 was never dropped)"

t0=$(date +%s%N)
restart_node 2
n=0
until has_at_least 2 $((N + 1)); do
    [ "$n" -lt 400 ] || fail "n2 has $(records 2) records 20 s after restarting, want $((N + 1))"
    sleep 0.05
    n=$((n + 1))
done
log "n2 caught up with $N records $((($(date +%s%N) - t0) / 1000000)) ms after restarting"
# exactly the same sets: nothing lost, nothing extra
assert_eq "$(records 2)" "$(records 1)" "records on n2 vs n1"
assert_eq "$(records 3)" "$(records 1)" "records on n3 vs n1"
[ "$(status_counter 2 recon_sessions)" -ge 1 ] || fail "n2 counted no reconciliation"
for i in 1 2 3; do
    stop_node "$i"
done
log "ok"
