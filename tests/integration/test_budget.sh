#!/usr/bin/env bash
# The store budget against a flood of strangers. n1 runs with --store-max-bytes 2 MB, adds
# its own offers, then imports 20,000 records from ~400 throwaway authors (7 MB): the store
# must stay under its budget, keep every record of its own, evict strangers (counted, and
# shown in status), and say so in `pull --json status` limits. n2, connected to n1 with the
# same budget, must stay under it too while it syncs (what n1 refuses it never forwards).
source "$(dirname "$0")/cli_common.sh"

PULL_BENCH=${PULL_BENCH:-$PULL_BIN_DIR/bench/pull-bench}
[ -x "$PULL_BENCH" ] || fail "no pull-bench binary at $PULL_BENCH"
MAX=2000000

store_bytes() {
    pull_n "$1" --json status | json_get store.bytes
}

start_nodes 2 --store-max-bytes "$MAX" --max-per-author 100000
assert_eq "$(pull_n 1 --json status | json_get limits.store_max_bytes)" "$MAX" "status limit"
mine=()
for k in 1 2 3 4 5; do
    mine+=("$(pull_n 1 --json offer add "My own offer $k" --tag mine | json_get id)")
done
connect 2 1

"$PULL_BENCH" gen 20000 "$IT_TMP/flood" >/dev/null
flood=$(stat -c %s "$IT_TMP/flood")
pull_n 1 import "$IT_TMP/flood" >&2 || true
bytes=$(store_bytes 1)
evicted=$(status_counter 1 records_evicted)
log "n1: $flood bytes of strangers' records imported, $bytes stored (budget $MAX), $evicted evicted"
[ "$bytes" -le "$MAX" ] || fail "n1 stores $bytes bytes, over its budget of $MAX"
[ "$evicted" -gt 0 ] || fail "n1 evicted nothing"
for id in "${mine[@]}"; do
    pull_n 1 show "$id" >/dev/null || fail "n1 lost its own record $id"
done

# n2 syncs from n1 and stays under its own budget
wait_until 30 "n2 to have n1's own offers" search_has 2 "${mine[0]}" mine
sleep 2
bytes2=$(store_bytes 2)
log "n2: $bytes2 bytes stored after syncing with n1"
[ "$bytes2" -le "$MAX" ] || fail "n2 stores $bytes2 bytes, over its budget of $MAX"

# the budget holds across a restart, and the node's own records are still there
stop_node 1
restart_node 1
[ "$(store_bytes 1)" -le "$MAX" ] || fail "over the budget after a restart"
for id in "${mine[@]}"; do
    pull_n 1 show "$id" >/dev/null || fail "n1 lost its own record $id across a restart"
done
stop_node 1
stop_node 2
echo "PASS: $flood bytes of flood, $bytes stored under a budget of $MAX, own records kept"
