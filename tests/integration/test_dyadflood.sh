#!/usr/bin/env bash
# Dyad proposals from strangers against a real pulld: anyone who sees one of my offers can
# propose on it. pull-evil propose sends them as sealed mail over a session:
#   1. ONE_KEY proposals from one proposer key: at most max-dyads-per-proposer (8) open;
#   2. MANY proposals from MANY_KEYS keys (5 each): at most max-dyads-open (1024) in all;
#   3. a restart: the node loads no more than the caps, and its memory stays bounded.
# The refusals are counted (status dyads.proposals_capped) and the log says so in a few
# lines, not one per proposal. Prints pulld's resident memory before, after the flood and
# after the restart (checked to grow by at most RSS_GROWTH_MAX_KB or twice the resting size, except under
# AddressSanitizer). PULL_MEASURE=1 prints the figures without failing (an older build).
source "$(dirname "$0")/cli_common.sh"

EVIL=${PULL_EVIL:-$PULL_BIN_DIR/tests/pull-evil}
[ -x "$EVIL" ] || fail "no pull-evil at $EVIL (build first)"
ONE_KEY=${DYADFLOOD_ONE_KEY:-2000}
MANY=${DYADFLOOD_MANY:-2000}
MANY_KEYS=$((MANY / 5))
RSS_GROWTH_MAX_KB=${RSS_GROWTH_MAX_KB:-24576}
MEASURE=${PULL_MEASURE:-0}
# AddressSanitizer's shadow memory and quarantine make RSS meaningless: figures only
if pulld_sanitized; then
    RSS_GROWTH_MAX_KB=$((1 << 30))
    log "sanitizer build: the RSS figures are printed, not checked"
fi

check() { # check COND MESSAGE: fail unless COND holds (only log it with PULL_MEASURE=1)
    if ! eval "$1"; then
        [ "$MEASURE" = 1 ] && log "(measure only) FAIL: $2" || fail "$2"
    fi
}

rss_kb() {
    awk '/^VmRSS/ {print $2}' "/proc/$(node_pid 1)/status"
}

# dyads_field NAME: the status "dyads" counter NAME (0 if absent).
dyads_field() {
    pull_n 1 --json status |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("dyads", {}).get(sys.argv[1], 0))' "$1"
}

# handled: proposals the dyad service has dealt with (applied or refused).
handled() {
    echo $(($(dyads_field msgs_applied) + $(dyads_field msgs_refused)))
}

# wait_handled N SECONDS: until the service has handled N proposals (by the clock: each
# poll costs a status call).
wait_handled() {
    local end=$(($(date +%s) + $2))
    until [ "$(handled)" -ge "$1" ]; do
        [ "$(date +%s)" -lt "$end" ] || fail "n1 handled $(handled) of $1 proposals within $2 s"
        sleep 0.5
    done
}

# open_from KEY: open dyads proposed by KEY in `pull dyad list`.
open_from() {
    pull_n 1 --json dyad list | python3 -c '
import json, sys
print(sum(1 for d in json.load(sys.stdin) if d["proposer"] == sys.argv[1] and d["state"] == "proposed"))' "$1"
}

start_node 1
wait_node 1
offer=$(pull_n 1 --json offer add "Bike repair in Lyon" --tag bike | json_get id)
target=$(node_addr 1)
sleep 1
rss0=$(rss_kb)
log "n1 holds its offer; pulld RSS ${rss0} kB"
# The bound scales with the node's own resident size at rest: one CI machine read 24 MB at
# rest and 38 MB of growth where this one reads 7 MB and 5 MB (the same binary). The
# unbounded table this test was written against grew by 5.7 times the resting size.
if [ $((2 * rss0)) -gt "$RSS_GROWTH_MAX_KB" ]; then
    RSS_GROWTH_MAX_KB=$((2 * rss0))
fi

# ---- 1. one key ----
t0=$(date +%s%N)
"$EVIL" propose "$target" --record "$offer" --count "$ONE_KEY" --keys 1 >"$IT_TMP/evil-one.out" 2>&1 ||
    fail "pull-evil propose failed: $(tail -n 5 "$IT_TMP/evil-one.out")"
grep -q "^EVIL propose sent=$ONE_KEY " "$IT_TMP/evil-one.out" || fail "pull-evil sent less: $(grep '^EVIL' "$IT_TMP/evil-one.out")"
key=$(awk '/^EVIL proposer/ {print $3; exit}' "$IT_TMP/evil-one.out")
wait_handled "$ONE_KEY" 120
n_key=$(open_from "$key")
rss1=$(rss_kb)
log "one key: $ONE_KEY proposals in $((($(date +%s%N) - t0) / 1000000)) ms, $n_key open dyads from it," \
    "$(dyads_field proposals_capped) capped; RSS ${rss1} kB"
check "[ $n_key -le 8 ]" "one key holds $n_key open dyads (max-dyads-per-proposer 8)"

# ---- 2. many keys ----
t0=$(date +%s%N)
"$EVIL" propose "$target" --record "$offer" --count "$MANY" --keys "$MANY_KEYS" >"$IT_TMP/evil-many.out" 2>&1 ||
    fail "pull-evil propose failed: $(tail -n 5 "$IT_TMP/evil-many.out")"
wait_handled $((ONE_KEY + MANY)) 120
held=$(dyads_field held)
open=$(dyads_field held_open)
capped=$(dyads_field proposals_capped)
rss2=$(rss_kb)
log "$MANY_KEYS keys: $MANY proposals in $((($(date +%s%N) - t0) / 1000000)) ms; n1 holds $held dyads," \
    "$open open, $capped capped in all; RSS ${rss2} kB"
check "[ $open -le 1024 ]" "n1 holds $open open dyads (max-dyads-open 1024)"
check "[ $capped -ge $((ONE_KEY + MANY - 1024)) ]" "only $capped proposals counted as capped"
lines=$(grep -c "proposal from .* refused" "$(node_dir 1)/log" || true)
log "refusals logged in $lines lines"
check "[ $lines -le 40 ]" "$lines log lines of refused proposals"
node_alive 1 || fail "n1 died during the flood"
check "[ $((rss2 - rss0)) -le $RSS_GROWTH_MAX_KB ]" "RSS grew by $((rss2 - rss0)) kB (max $RSS_GROWTH_MAX_KB)"

# ---- 3. a restart ----
stop_node 1
restart_node 1
sleep 2
rss3=$(rss_kb)
open3=$(dyads_field held_open)
log "after a restart: $(dyads_field held) dyads, $open3 open; RSS ${rss3} kB"
check "[ $open3 -le 1024 ]" "n1 loaded $open3 open dyads after a restart"
check "[ $((rss3 - rss0)) -le $RSS_GROWTH_MAX_KB ]" "RSS after the restart is $((rss3 - rss0)) kB over the start"
log "RSS: start ${rss0} kB, one key ${rss1} kB, many keys ${rss2} kB, restart ${rss3} kB"
stop_node 1
echo "PASS: strangers' proposals stayed within the caps"
