#!/usr/bin/env bash
# Catch-up: a node that was stopped while 1,000 records were written elsewhere has all of
# them within 10 s of restarting. It finds its peer again from the peers it persisted (and
# its --bootstrap line), and reconciliation (proto/recon) brings the difference over: the
# records were imported while it was away, so gossip alone would never send them.
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
"$PULL_BENCH" gen 1000 "$IT_TMP/bundle" >/dev/null
out=$(pull_n 3 --json import "$IT_TMP/bundle")
assert_eq "$(printf '%s' "$out" | json_get imported)" 1000 "records imported on n3"
wait_until 10 "n1 to have the imported records" has_at_least 1 1001

t0=$(date +%s%N)
restart_node 2
n=0
until has_at_least 2 1001; do
    [ "$n" -lt 200 ] || fail "n2 has $(records 2) records 10 s after restarting, want 1001"
    sleep 0.05
    n=$((n + 1))
done
log "n2 caught up with 1000 records $((($(date +%s%N) - t0) / 1000000)) ms after restarting"
# exactly the same sets: nothing lost, nothing extra
assert_eq "$(records 2)" "$(records 1)" "records on n2 vs n1"
assert_eq "$(records 3)" "$(records 1)" "records on n3 vs n1"
[ "$(status_counter 2 recon_sessions)" -ge 1 ] || fail "n2 counted no reconciliation"
for i in 1 2 3; do
    stop_node "$i"
done
log "ok"
