#!/usr/bin/env bash
# Invites: a fresh node joins a private network from the code alone.
#
# n1 and n2 run on a private network key; n3, n4 and n5 are fresh nodes of the public
# network.
# `pull invite --uses 1` on n1, `pull join CODE` on n3: n3's pulld starts again on the
# private key (its network key changes), and is then connected to n1 and holds n1's
# records. The same
# code again (from n4) is refused as used up, an expired code as expired, a code with one
# character changed as a typo (exit 2, nothing dialed) and garbage (exit 2). A node of the
# network already is told so; n4 joins n5 (both public) and is connected at once; a node
# started with --network-key is refused another network; --no-restart only writes the
# config; a join whose inviter is gone fails and writes nothing.
source "$(dirname "$0")/cli_common.sh"

KEY=$(python3 -c 'import os; print(os.urandom(32).hex())')

start_node 1 --network-key "$KEY"
start_node 2 --network-key "$KEY"
start_node 3
start_node 4
for i in 1 2 3 4; do wait_node "$i"; done
connect 2 1
n1=$(node_id 1)
rec=$(pull_n 1 --json offer add "Sourdough starter to share" --tag bread | json_get id)
wait_until 10 "n2 has n1's offer" search_has 2 "$rec" sourdough

log "invite on n1 (private network), one use"
code=$(pull_n 1 invite --uses 1)
case "$code" in
pull1-*) ;;
*) fail "pull invite printed '$code', want a pull1- code" ;;
esac
assert_eq "$(printf '%s\n' "$code" | wc -l)" 1 "lines of pull invite"
# the code is a secret: it never reaches a log
grep -qF "$code" "$(node_dir 1)/log" && fail "the code is in n1's log"
[ "$(stat -c %a "$(node_dir 1)/invites")" = 600 ] || fail "invites file is not 0600"
json=$(pull_n 1 --json invite --uses 2 --expires 1h)
assert_eq "$(printf '%s' "$json" | json_get private)" true "a private network's invite"
assert_eq "$(printf '%s' "$json" | json_get uses)" 2 "uses"
assert_eq "$(pull_n 1 --json status | json_get invites_open)" 2 "n1's open invites"

expect_fail 2 pull_n 1 invite --uses 0 >/dev/null
expect_fail 2 pull_n 1 invite --uses 1001 >/dev/null
expect_fail 2 pull_n 1 invite --expires 5 >/dev/null
expect_fail 2 pull_n 1 invite --expires 91d >/dev/null
expect_fail 2 pull_n 1 invite extra >/dev/null

log "typos and garbage: exit 2, one line, nothing dialed"
# one character changed in the middle (to another base32 letter)
mid=$((${#code} / 2))
c=${code:$mid:1}
if [ "$c" = a ]; then r=b; else r=a; fi
typo="${code:0:$mid}$r${code:$((mid + 1))}"
err=$(expect_fail 2 pull_n 3 join "$typo")
assert_contains "$err" "typo" "join with a typo"
err=$(expect_fail 2 pull_n 3 join "hello")
assert_contains "$err" "not an invite code" "join with garbage"
err=$(expect_fail 2 pull_n 3 join "pull1-0000")
assert_contains "$err" "invite code" "join with a short code"
err=$(expect_fail 2 pull_n 3 join "${code}aa")
assert_contains "$err" "invite code" "join with a longer code"
# n3 is still on the public network, its config untouched
[ ! -e "$(node_dir 3)/config" ] || fail "a refused code wrote n3's config"

log "n3 joins with the code"
pid3=$(node_pid 3)
out=$(pull_n 3 join "$code")
assert_contains "$out" "pulld restarted on it" "join across networks"
# the same process, started again on the private key
assert_eq "$(node_pid 3)" "$pid3" "n3's pid"
kill -0 "$pid3" || fail "n3 is gone"
grep -q "stopped; starting again" "$(node_dir 3)/log" || fail "n3's log does not say it restarted"
grep -q "^network-key $KEY\$" "$(node_dir 3)/config" || fail "n3's config lacks the network key"
grep -q "^bootstrap $n1@" "$(node_dir 3)/config" || fail "n3's config lacks n1 as bootstrap"
[ "$(stat -c %a "$(node_dir 3)/config")" = 600 ] || fail "n3's config is not 0600"
grep -qF "$code" "$(node_dir 3)/log" && fail "the code is in n3's log"
assert_eq "$(pull_n 1 --json status | json_get invites_open)" 1 "n1's open invites after a join"
wait_until 15 "n3 connected to n1" peers_has 3 "$n1"
wait_until 15 "n3 has n1's offer" search_has 3 "$rec" sourdough
assert_eq "$(pull_n 3 --json status | json_get network)" "$(pull_n 1 --json status | json_get network)" \
    "n3's network"

log "the same code again: used up"
err=$(expect_fail 1 pull_n 4 join "$code")
assert_contains "$err" "used up" "second join"
[ ! -e "$(node_dir 4)/config" ] || fail "a refused join wrote n4's config"

log "an expired code"
old=$(pull_n 1 invite --expires 1s)
sleep 2.2
err=$(expect_fail 1 pull_n 4 join "$old")
assert_contains "$err" "expired" "join with an expired code"

log "n3 is already on the network: a code of n2 says so"
code2=$(pull_n 2 invite)
wait_until 10 "n3 connected to n2" peers_has 3 "$(node_id 2)"
err=$(expect_fail 1 pull_n 3 join "$code2")
assert_contains "$err" "already connected" "join of a node on the network already"

log "a join on the same (public) network connects at once"
start_node 5
wait_node 5
out=$(pull_n 4 join "$(pull_n 5 invite)")
assert_contains "$out" "connecting" "join on the same network"
wait_until 10 "n4 connected to n5" peers_has 4 "$(node_id 5)"
grep -q "^bootstrap $(node_id 5)@" "$(node_dir 4)/config" || fail "n4's config lacks n5"

log "a node started with --network-key cannot join another network"
err=$(expect_fail 1 pull_n 2 join "$(pull_n 5 invite)")
assert_contains "$err" "--network-key" "join of a node with --network-key"

log "--no-restart: the config is written, pulld goes on as it was"
start_node 6
wait_node 6
pid6=$(node_pid 6)
out=$(pull_n 6 join --no-restart "$(pull_n 1 invite)")
assert_contains "$out" "restart pulld to use it" "join --no-restart"
assert_eq "$(pull_n 6 --json status | json_get network)" public "n6's network before its restart"
grep -q "^network-key $KEY\$" "$(node_dir 6)/config" || fail "n6's config lacks the network key"
assert_eq "$(node_pid 6)" "$pid6" "n6's pid"

log "the inviter is gone: the join fails, and nothing is written"
code5=$(pull_n 5 invite)
stop_node 5
cp "$(node_dir 4)/config" "$IT_TMP/n4.config"
err=$(expect_fail 1 pull_n 4 join "$code5")
assert_contains "$err" "could not reach the inviter" "join of a stopped inviter"
cmp -s "$(node_dir 4)/config" "$IT_TMP/n4.config" || fail "a failed join changed n4's config"

log "pull join with pulld stopped: exit 3"
stop_node 4
expect_fail 3 pull_n 4 join "$code2" >/dev/null
log "ok"
