#!/usr/bin/env bash
# Crash safety. (1) Records are added through the CLI while pulld is killed with SIGKILL
# at random moments and restarted: every add that was acknowledged (the CLI printed the
# record) is present afterwards, because pulld acknowledges only after the commit.
# (2) A node killed in the middle of a sync keeps every record it had committed: what its
# search listed just before the kill is all there after a restart without peers, and once
# its peer is back the sync completes to exactly the peer's set.
source "$(dirname "$0")/cli_common.sh"

PULL_BENCH=${PULL_BENCH:-$PULL_BIN_DIR/bench/pull-bench}
[ -x "$PULL_BENCH" ] || fail "no pull-bench binary at $PULL_BENCH"
ROUNDS=${KILL9_ROUNDS:-8}

records() {
    pull_n "$1" --json status | json_get records
}

# ids I: the ids of node I's live records, one per line, sorted.
ids() {
    pull_n "$1" --json search --limit 10000 |
        python3 -c 'import json,sys; print("\n".join(sorted(r["id"] for r in json.load(sys.stdin))))'
}

# ---- (1) acknowledged adds survive SIGKILL
start_node 1 --max-per-author 100000
wait_node 1
ACKED=$IT_TMP/acked
STOP=$IT_TMP/stop-writer
: >"$ACKED"
(
    k=0
    while [ ! -e "$STOP" ]; do
        k=$((k + 1))
        if out=$(pull_n 1 --json offer add "crash test $k" --tag crash 2>/dev/null); then
            printf '%s\n' "$out" | sed -n 's/^{"id":"\([a-z2-7]*\)".*/\1/p' >>"$ACKED"
        else
            sleep 0.02
        fi
    done
) &
WRITER=$!
for r in $(seq 1 "$ROUNDS"); do
    sleep "0.$((RANDOM % 5 + 1))$((RANDOM % 10))"
    kill_node 1
    sleep 0.0$((RANDOM % 10))
    restart_node 1
done
touch "$STOP"
wait "$WRITER" || true
n_acked=$(grep -c . "$ACKED" || true)
[ "$n_acked" -ge 10 ] || fail "only $n_acked adds were acknowledged: the writer did not run"
# `pull show` asks the store itself, record by record
missing=0
while read -r id; do
    if ! pull_n 1 show "$id" >/dev/null 2>&1; then
        missing=$((missing + 1))
        echo "missing: $id" >&2
    fi
done <"$ACKED"
[ "$missing" = 0 ] || fail "$missing of $n_acked acknowledged records lost after $ROUNDS kill -9"
log "$n_acked acknowledged adds across $ROUNDS kill -9: all present"
stop_node 1

# ---- (2) kill -9 in the middle of a sync
start_node 2
wait_node 2
"$PULL_BENCH" gen 8000 "$IT_TMP/bundle" >/dev/null
pull_n 2 import "$IT_TMP/bundle" >/dev/null
total=$(records 2)
[ "$total" -ge 8000 ] || fail "n2 imported $total records, want 8000"
start_node 3 --bootstrap "$(node_addr 2)"
wait_node 3
n=0
until [ "$(records 3)" -ge 200 ]; do
    [ "$n" -lt 400 ] || fail "n3 did not start syncing (has $(records 3))"
    sleep 0.02
    n=$((n + 1))
done
before=$(ids 3)
kill_node 3
n_before=$(printf '%s\n' "$before" | grep -c . || true)
log "n3 killed during the sync with $n_before of $total records listed"
stop_node 2
restart_node 3
after=$(ids 3)
lost=$(comm -23 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | grep -c . || true)
[ "$lost" = 0 ] || fail "n3 lost $lost committed records to kill -9"
restart_node 2
connect 3 2 # both came back on new ports (--listen 127.0.0.1:0)
t0=$(date +%s%N)
n=0
until [ "$(records 3)" -ge "$total" ]; do
    [ "$n" -lt 600 ] || fail "n3 has $(records 3) of $total records 30 s after the restart"
    sleep 0.05
    n=$((n + 1))
done
assert_eq "$(records 3)" "$total" "records on n3 after the sync"
log "n3 completed the sync $((($(date +%s%N) - t0) / 1000000)) ms after reconnecting"
stop_node 3
stop_node 2
log "ok"
