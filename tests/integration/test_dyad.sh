#!/usr/bin/env bash
# Dyads between real pulld processes, driven by the real CLI (`pull dyad ...`):
#   1. A proposes on B's offer, B accepts, A marks it done, both ack: completed on both,
#      and a third node C receives both attestations by gossip;
#   2. the same while B is offline: the proposal travels as sealed mail carried by C,
#      B comes back and the dyad moves on;
#   3. C, a third party, can't move A and B's dyad;
#   4. A is killed (SIGKILL) mid-dyad and restarted: nothing is lost, the dyad completes.
# Nodes: n1 = A, n2 = B, n3 = C.
source "$(dirname "$0")/cli_common.sh"

# reconnect I J: node I dials node J, fine if they are connected already.
reconnect() {
    pull_n "$1" connect "$(node_addr "$2")" >/dev/null 2>&1 && return 0
    pull_n "$1" --json peers | python3 -c '
import json, sys
sys.exit(0 if any(p.get("id") == sys.argv[1] and p.get("state") == "active" for p in json.load(sys.stdin)) else 1)' "$(node_id "$2")" ||
        fail "n$1 could not dial n$2"
}
dyad_field() { # dyad_field I DYAD FIELD: a field of `pull --json dyad show DYAD` on node I
    pull_n "$1" --json dyad show "$2" | json_get "$3"
}
dyad_state_is() { # dyad_state_is I DYAD STATE
    [ "$(dyad_field "$1" "$2" state)" = "$3" ]
}
# attestations_of I DYAD_SLOT_HEX: how many attestation records node I holds whose slot is
# the dyad's (first 16 bytes of the dyad id)
attestations_count() {
    pull_n "$1" --json search --kind attestation --limit 10000 |
        python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r.get("kind") == "attestation"))'
}
attestations_at_least() {
    [ "$(attestations_count "$1")" -ge "$2" ]
}

start_nodes 3
A=$(node_id 1)
B=$(node_id 2)
C=$(node_id 3)
connect 1 2
connect 2 3

# ---- 1. the whole dyad, A and B online --------------------------------------------------
offer=$(pull_n 2 --json offer add "Bike repair in Lyon" --body "I fix bikes" --tag bike | json_get id)
wait_until 15 "A has B's offer" search_has 1 "$offer" bike

expect_fail 2 pull_n 2 dyad propose "$offer" >/dev/null # can't propose on my own offer

pull_n 2 --json watch >"$IT_TMP/watch2.json" 2>/dev/null &
watch_pid=$!
watching() { [ "$(pull_n 2 --json status | json_get control.watchers)" -ge 1 ]; }
wait_until 10 "B's watch is registered" watching
d1=$(pull_n 1 --json dyad propose "$offer" --message "my back wheel is bent" | json_get id)
[ ${#d1} = 52 ] || fail "dyad id: '$d1'"
assert_eq "$(dyad_field 1 "$d1" state)" proposed "A's new dyad"
assert_eq "$(dyad_field 1 "$d1" role)" proposer "A's role"
assert_eq "$(dyad_field 1 "$d1" responder)" "$B" "responder"
wait_until 15 "B receives the proposal" dyad_state_is 2 "$d1" proposed
assert_eq "$(dyad_field 2 "$d1" note)" "my back wheel is bent" "the proposal's note on B"
assert_eq "$(dyad_field 2 "$d1" role)" responder "B's role"
watch_has_dyad() {
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "dyad" and e["dyad"]["id"] == sys.argv[2] and e["dyad"]["state"] == "proposed":
        sys.exit(0)
sys.exit(1)' "$IT_TMP/watch2.json" "$1"
}
wait_until 10 "B's watch shows the proposal" watch_has_dyad "$d1"
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
log "proposal delivered"

err=$(expect_fail 1 pull_n 1 dyad accept "$d1")
assert_contains "$err" "only the responder" "A accepting its own proposal"
err=$(expect_fail 1 pull_n 2 dyad ack "$d1")
assert_contains "$err" "ack" "ack before done"

pull_n 2 dyad accept "$d1" --message "bring it Monday" >/dev/null
assert_eq "$(dyad_field 2 "$d1" state)" accepted "B after accepting"
wait_until 15 "A sees the accept" dyad_state_is 1 "$d1" accepted
pull_n 1 dyad done "$d1" >/dev/null
wait_until 15 "B sees done" dyad_state_is 2 "$d1" done
err=$(expect_fail 1 pull_n 1 dyad done "$d1")
assert_contains "$err" "already" "second done"
pull_n 1 dyad ack "$d1" >/dev/null
pull_n 2 dyad ack "$d1" >/dev/null
wait_until 15 "A completed" dyad_state_is 1 "$d1" completed
wait_until 15 "B completed" dyad_state_is 2 "$d1" completed
log "dyad 1 completed on both sides"
pull_n 1 dyad list | has completed || fail "dyad list on A does not show it"
[ "$(pull_n 1 --json dyad list | json_get length)" = 1 ] || fail "A should list one dyad"

wait_until 20 "C has both attestations" attestations_at_least 3 2
att=$(pull_n 3 --json search --kind attestation --limit 10)
printf '%s' "$att" | python3 -c '
import json, sys
a, b = sys.argv[1], sys.argv[2]
rs = [r for r in json.load(sys.stdin) if r["kind"] == "attestation"]
pairs = sorted((r["author"], r["peer"]) for r in rs)
assert pairs == sorted([(a, b), (b, a)]), pairs
assert all(r["title"] == "dyad completed" and "dyad" in r["tags"] for r in rs), rs
' "$A" "$B" || fail "C's attestations are not A<->B: $att"
log "C holds the two attestations"
aid=$(pull_n 3 --json search --kind attestation --author "$A" | json_get 0.id)
shown=$(pull_n 3 --json show "$aid")
assert_eq "$(printf '%s' "$shown" | json_get author_dyads_completed)" 1 "A's completed dyads seen by C"
assert_eq "$(printf '%s' "$shown" | json_get author_dyads_counterparts)" 1 "A's counterparts seen by C"

# ---- 3. a third party can't act on the dyad ---------------------------------------------
err=$(expect_fail 1 pull_n 3 dyad accept "$d1")
assert_contains "$err" "no dyad" "C accepting A and B's dyad"

# ---- 2. B offline: the proposal travels as mail through C -------------------------------
reconnect 1 3
stop_node 2
log "B stopped"
d2=$(pull_n 1 --json dyad propose "$offer" --message "and the front wheel" | json_get id)
assert_eq "$(dyad_field 1 "$d2" state)" proposed "A's second dyad"
# the item A sealed for this proposal (A's log names it), then C storing that very item
mid=$(sed -n "s/.*dyad ${d2:0:8}: propose sealed as mail \([a-z2-7]*\) to.*/\1/p" "$(node_dir 1)/log")
[ -n "$mid" ] || fail "A's log does not name the mail item of its proposal"
wait_until 15 "C carries A's proposal ($mid)" grep -q "mail: carrying $mid for ${B:0:8}" "$(node_dir 3)/log"
log "C holds the sealed proposal"

# ---- 3b. forged accepts from C reach A over the wire and are refused -------------------
FORGE=${PULL_BIN_DIR}/tests/pull-dyadforge
[ -x "$FORGE" ] || FORGE=$(find "$PULL_BIN_DIR" -name pull-dyadforge -type f | head -n 1)
[ -x "$FORGE" ] || fail "no pull-dyadforge in $PULL_BIN_DIR"
stop_node 3
"$FORGE" "$(node_dir 3)" "$d2" "$A" "$B" >/dev/null || fail "pull-dyadforge failed"
restart_node 3
reconnect 3 1
wait_until 15 "A refuses C's own accept" grep -q "accept refused: not a party" "$(node_dir 1)/log"
wait_until 15 "A refuses the accept forged in B's name" grep -q "accept refused: bad signature" "$(node_dir 1)/log"
assert_eq "$(dyad_field 1 "$d2" state)" proposed "A's dyad after the forged accepts"
log "forged accepts refused"

restart_node 2
reconnect 2 3
wait_until 20 "B receives the proposal through C" dyad_state_is 2 "$d2" proposed
pull_n 2 dyad accept "$d2" >/dev/null
wait_until 20 "A sees the accept" dyad_state_is 1 "$d2" accepted
log "mail path: proposal and accept delivered"

# ---- 4. A killed mid-dyad loses nothing -------------------------------------------------
pull_n 1 dyad done "$d2" --message "all fixed" >/dev/null
kill_node 1
restart_node 1
assert_eq "$(dyad_field 1 "$d2" state)" done "A's dyad after kill -9"
assert_eq "$(dyad_field 1 "$d1" state)" completed "A's first dyad after kill -9"
reconnect 1 3
wait_until 20 "B sees done" dyad_state_is 2 "$d2" done
pull_n 2 dyad ack "$d2" >/dev/null
pull_n 1 dyad ack "$d2" >/dev/null
wait_until 20 "A completed dyad 2" dyad_state_is 1 "$d2" completed
wait_until 20 "B completed dyad 2" dyad_state_is 2 "$d2" completed
stop_node 2
restart_node 2
assert_eq "$(dyad_field 2 "$d2" state)" completed "B's dyad after a restart"
[ "$(pull_n 2 --json dyad list | json_get length)" = 2 ] || fail "B should list two dyads"
my_completed() { [ "$(pull_n "$1" --json status | json_get dyads.completed)" = "$2" ]; }
wait_until 20 "A's status counts two completed dyads" my_completed 1 2
assert_eq "$(pull_n 1 --json status | json_get dyads.counterparts)" 1 "A's counterparts"
log "restarts lost nothing; all dyads completed"

# ---- 5. show AUTHOR, the human watch line, cancel ---------------------------------------
author_dyads() { # author_dyads I KEY N: node I's show KEY reports N completed dyads
    [ "$(pull_n "$1" --json show "$2" | json_get dyads_completed)" = "$3" ]
}
wait_until 20 "A's show counts its two completed dyads" author_dyads 1 "$A" 2
a=$(pull_n 1 --json show "$A")
assert_eq "$(printf '%s' "$a" | json_get dyads_counterparts)" 1 "A's counterparts (show AUTHOR)"
assert_eq "$(printf '%s' "$a" | json_get author)" "$A" "show AUTHOR on A"
c=$(pull_n 3 --json show "$A" | json_get dyads_completed)
[ "$c" -ge 1 ] || fail "C's show of A counts $c completed dyads"
b=$(pull_n 3 --json show "${B:0:10}")
assert_eq "$(printf '%s' "$b" | json_get author)" "$B" "show of B by a prefix on C"
[ "$(printf '%s' "$b" | json_get dyads_completed)" -ge 1 ] || fail "C's show of B: $b"
assert_eq "$(printf '%s' "$b" | json_get offers)" 1 "B's offers seen by C"
assert_contains "$(pull_n 1 show "$A")" "2 completed dyads with 1 person" "human show AUTHOR"
assert_contains "$(pull_n 1 show "$offer")" "completed dyad" "human show of B's offer"
log "show AUTHOR counts completed dyads"

reconnect 1 2
pull_n 2 watch --mine >"$IT_TMP/watch2.txt" 2>/dev/null &
watch_pid=$!
wait_until 10 "B's human watch is registered" watching
d3=$(pull_n 1 --json dyad propose "$offer" --message "maybe the brakes too" | json_get id)
# "dyad  ID  WHAT HAPPENED  STATE  with PERSON  on "TITLE"  "NOTE"  next: ..."
watch_line() { grep -q "dyad  *${d3:0:8}  .* $1 .* with ${A:0:8}  on \"Bike repair" "$IT_TMP/watch2.txt"; }
wait_until 15 "B's human watch prints the proposal" watch_line proposed
assert_contains "$(grep "${d3:0:8} .* proposed " "$IT_TMP/watch2.txt")" '"maybe the brakes too"' \
    "the note in the watch line"
log "human watch line: $(grep "${d3:0:8} .* proposed " "$IT_TMP/watch2.txt")"

err=$(expect_fail 1 pull_n 2 dyad cancel "$d3")
assert_contains "$err" "cancel" "B cancelling A's proposal"
c=$(pull_n 1 --json dyad cancel "$d3" --message "never mind")
assert_eq "$(printf '%s' "$c" | json_get state)" cancelled "A's dyad after cancel"
wait_until 15 "B sees the cancel" dyad_state_is 2 "$d3" cancelled
wait_until 10 "B's human watch prints the cancel" watch_line cancelled
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
expect_fail 2 pull_n 1 dyad list --message x >/dev/null
log "dyad cancel: cancelled on both sides"
