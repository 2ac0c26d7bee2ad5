#!/usr/bin/env bash
# The control socket against local strangers (daemon/ctl_server.c, "Strangers' budget"):
#   - 64 clients that connect and send nothing used to lock the owner's `pull` out for as
#     long as they stayed: now the one idle longest makes room, and they are closed after
#     ctl_first_request_ms anyway;
#   - idle clients, and clients that do not read, are closed after ctl_idle_ms; a watcher
#     that reads stays;
#   - 60 watchers that never read while 20,000 records arrive used to grow pulld by about
#     1 MiB each (RSS 6 -> 147 MB here): now each lags within ctl_watch_queue_bytes and all
#     together within ctl_watch_total_bytes, the owner still gets answers, and a watcher
#     that catches up hears how many events it missed;
#   - streams may not take the ctl_reserved_clients slots.
# ctl_attack.py holds the hostile clients.
source "$(dirname "$0")/cli_common.sh"

ATTACK="python3 $IT_SRC_DIR/tests/integration/ctl_attack.py"
PULL_BENCH=${PULL_BENCH:-$PULL_BIN_DIR/bench/pull-bench}

# control I KEY: a field of `pull --json status`'s "control" object.
control() {
    pull_n "$1" --json status | json_get "control.$2"
}

# control_is I KEY OP VALUE: test's comparison of that field (for wait_until).
control_is() {
    test "$(control "$1" "$2")" "$3" "$4"
}

start_nodes 1
sock1="$(node_dir 1)/pulld.sock"
limits=$(pull_n 1 --json status | json_get limits)
for k in ctl_max_clients ctl_reserved_clients ctl_first_request_ms ctl_idle_ms ctl_max_inflight \
    ctl_slow_share_pct ctl_watch_queue_bytes ctl_watch_total_bytes; do
    assert_contains "$limits" "\"$k\"" "status limits"
done

log "64 silent clients: the owner's pull still gets in, and they are closed"
$ATTACK idle "$sock1" 64 7 >"$IT_TMP/idle.out" &
idle=$!
sleep 1
for k in 1 2 3; do
    ms=$(timed_ms pull_n 1 status)
    pull_n 1 status >/dev/null || fail "pull status failed with 64 silent clients (try $k)"
    log "pull status with 64 silent clients: $ms ms"
    [ "$ms" -lt 3000 ] || fail "pull status took $ms ms with 64 silent clients"
done
[ "$(control 1 evicted)" -ge 1 ] || fail "no silent client was evicted"
wait "$idle"
assert_eq "$(cat "$IT_TMP/idle.out" | tail -1)" "closed 64" "silent clients closed by pulld"
[ "$(control 1 idle_closed)" -ge 60 ] || fail "idle_closed is $(control 1 idle_closed)"

log "idle and non-reading clients go after ctl_idle_ms, a reading watcher stays"
start_node 2 --ctl-first-request-ms 300 --ctl-idle-ms 1500
wait_node 2
sock2="$(node_dir 2)/pulld.sock"
assert_eq "$($ATTACK idle "$sock2" 1 1 | tail -1)" "closed 1" "a silent client after 300 ms"
pull_n 2 watch >"$IT_TMP/watch2.out" 2>/dev/null &
reader=$!
$ATTACK watchers "$sock2" 1 6 >"$IT_TMP/stall.out" &
stall=$!
wait_until 5 "two watchers on n2" control_is 2 watchers = 2
"$PULL_BENCH" gen 3000 "$IT_TMP/small.bundle" >/dev/null
pull_n 2 import "$IT_TMP/small.bundle" >/dev/null
wait_until 10 "n2 closes the watcher that does not read" control_is 2 stalled_closed -ge 1
sleep 2 # longer than ctl_idle_ms: the reading watcher has nothing to do, and stays
assert_eq "$(control 2 watchers)" 1 "watchers left on n2"
kill -0 "$reader" || fail "the reading watcher was closed"
kill "$reader"
wait "$reader" 2>/dev/null || true
wait "$stall"
assert_eq "$(tail -1 "$IT_TMP/stall.out")" "open 0" "the stalled watcher is closed"
[ "$(grep -c '  offer \|  need ' "$IT_TMP/watch2.out")" -ge 3000 ] ||
    fail "the reading watcher missed events: $(grep -c '  offer \|  need ' "$IT_TMP/watch2.out")"
stop_node 2

log "60 watchers that never read while 20,000 records arrive"
"$PULL_BENCH" gen 20000 "$IT_TMP/big.bundle" >/dev/null
pid=$(node_pid 1)
rss0=$($ATTACK rss "$pid")
$ATTACK watchers "$sock1" 59 40 >"$IT_TMP/w.out" &
watchers=$!
$ATTACK lagger "$sock1" 12 4 >"$IT_TMP/lag.out" &
lagger=$!
wait_until 10 "60 watchers" control_is 1 watchers = 60
err=$(expect_fail 1 pull_n 1 watch)
assert_contains "$err" "too many watches and exports at once" "a 61st watch"
ms0=$(timed_ms pull_n 1 status)
pull_n 1 import "$IT_TMP/big.bundle" >/dev/null &
import=$!
sleep 1
ms=$(timed_ms pull_n 1 status)
wait "$import" || fail "the import failed"
rss1=$($ATTACK rss "$pid")
wbytes=$(control 1 watch_bytes)
dropped=$(control 1 watch_dropped)
log "pulld RSS/peak before: ${rss0// //} kB, after: ${rss1// //} kB; watchers' queues $wbytes bytes," \
    "$dropped events left out; pull status ${ms0} ms idle, ${ms} ms during the import"
[ "$wbytes" -le $((8 * 1024 * 1024 + 65536)) ] || fail "the watchers hold $wbytes bytes"
[ "$dropped" -gt 0 ] || fail "no event was left out"
[ "$ms" -lt 5000 ] || fail "pull status took $ms ms during the import"
if pulld_sanitized; then
    log "(sanitizer build: RSS not compared)"
else
    peak=${rss1#* }
    [ "$peak" -lt 110000 ] || fail "pulld peaked at $peak kB (before the limits: about 147,000)"
fi
wait "$lagger"
lag=$(cat "$IT_TMP/lag.out")
[ "$lag" != "lagged none" ] || fail "the watcher that caught up was not told what it missed"
log "the watcher that fell behind and caught up: $lag"
kill "$watchers" 2>/dev/null || true
wait "$watchers" 2>/dev/null || true
pull_n 1 status >/dev/null || fail "n1 stopped answering"
echo "ok"
